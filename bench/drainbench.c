/* drainbench.c: what it costs a server to discard what a flooding peer sends
 * after the server is done with the connection. An ordinary program that
 * knows nothing of any preload: bench/run runs it with and without one.
 *
 *   drainbench close SECONDS     the server closes with the peer still
 *                                sending and does nothing more itself
 *                                (whatever drains, drains elsewhere in the
 *                                process, or the kernel resets)
 *   drainbench read4k SECONDS    the server half-closes (SHUT_WR) and reads
 *                                into a 4 KiB buffer until the peer's EOF:
 *                                nginx's lingering read (its buffer is 4 KiB)
 *   drainbench read64k SECONDS   the same with a 64 KiB buffer
 *
 * The peer, a child process, connects and writes 64 KiB blocks for SECONDS,
 * then closes; it reports how many bytes it got into its socket. The server
 * measures its own CPU time (getrusage RUSAGE_SELF: every thread of the
 * process) from just before the close or the first read until well after the
 * peer has gone. Prints one JSON line: bytes sent, CPU seconds, CPU seconds
 * per GB (1e9 bytes), whether the peer saw a reset. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (64 * 1024)

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* The flood: write until the time is up or the server resets us, then
 * close and report the count (and errno, 0 if none) on the pipe. */
static void flood(struct sockaddr_in addr, double seconds, int report)
{
	static char block[BLOCK];
	int s = socket(AF_INET, SOCK_STREAM, 0);
	long long sent = 0;
	int err = 0;

	if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) < 0)
		_exit(2);
	memset(block, 'x', sizeof block);
	for (double end = now_s() + seconds; now_s() < end;) {
		ssize_t n = write(s, block, sizeof block);
		if (n < 0) {
			err = errno;
			break;
		}
		sent += n;
	}
	close(s);
	dprintf(report, "%lld %d\n", sent, err);
	_exit(0);
}

/* Half-close and read until the peer's EOF, as a lingering close does. */
static void read_loop(int fd, size_t size)
{
	char *buf = malloc(size);

	shutdown(fd, SHUT_WR);
	while (read(fd, buf, size) > 0)
		;
	close(fd);
	free(buf);
}

int main(int argc, char **argv)
{
	size_t size = 0;
	if (argc == 3 && !strcmp(argv[1], "read4k"))
		size = 4096;
	else if (argc == 3 && !strcmp(argv[1], "read64k"))
		size = 65536;
	else if (argc != 3 || strcmp(argv[1], "close")) {
		fprintf(stderr, "usage: drainbench close|read4k|read64k SECONDS\n");
		return 2;
	}
	double seconds = atof(argv[2]);
	signal(SIGPIPE, SIG_IGN);

	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof addr;
	int l = socket(AF_INET, SOCK_STREAM, 0), report[2];
	if (bind(l, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&addr, &len) < 0 || pipe(report) < 0) {
		perror("listen");
		return 1;
	}
	pid_t child = fork();
	if (child == 0) {
		close(report[0]);
		flood(addr, seconds, report[1]);
	}
	close(report[1]);
	int fd = accept(l, NULL, NULL);
	char first[BLOCK]; /* the connection has begun: the flood is on */
	if (fd < 0 || read(fd, first, sizeof first) <= 0) {
		perror("accept");
		return 1;
	}

	double cpu0 = cpu_s();
	if (size)
		read_loop(fd, size);
	else
		close(fd);
	long long sent = 0;
	int err = 0;
	FILE *r = fdopen(report[0], "r");
	if (!r || fscanf(r, "%lld %d", &sent, &err) != 2)
		return 1;
	waitpid(child, NULL, 0);
	/* Whatever drains in the background has the peer's FIN by now; give it
	 * time to see it: an idle process costs no CPU, so waiting biases nothing. */
	usleep(500000);
	double cpu = cpu_s() - cpu0;
	printf("{\"case\": \"%s\", \"seconds\": %.1f, \"bytes\": %lld, \"cpu_s\": %.3f, "
	       "\"cpu_s_per_gb\": %.4f, \"peer_error\": \"%s\"}\n",
	       argv[1], seconds, sent, cpu, sent ? cpu / (sent / 1e9) : 0.0,
	       err ? strerror(err) : "");
	return 0;
}
