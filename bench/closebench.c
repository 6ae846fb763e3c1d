/* closebench.c: how long close() takes, and what memory a lingering socket
 * costs, measured from inside an ordinary program. It knows nothing of any
 * preload: run it with and without one and compare (bench/run does).
 *
 *   closebench idle N      close() of N idle connections (the ordinary path:
 *                          nothing unread, nothing unacknowledged)
 *   closebench pending N   close() of N connections with unread input whose
 *                          peers keep them open: under a lingering-close
 *                          preload all N linger at once
 *   closebench prompt N    close() of N connections with unread input whose
 *                          peer closes as soon as it sees our FIN
 *
 * Prints one JSON line: close() latency median, p99 and max in microseconds,
 * and the growth of the process's resident memory (kB) and of its malloc'd
 * bytes (all arenas, mallinfo2) across the closes.
 * Peers run in a child process, so the parent's memory is only its own. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* Bytes handed out by malloc, in every arena and in mmap'd blocks. */
static size_t malloc_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Room for n connections, their copies and a quarter to spare: as root
 * the hard limit can be raised, otherwise take what it allows. */
static void raise_fd_limit(int n)
{
	struct rlimit rl, want = { (rlim_t)n * 6 + 1024, (rlim_t)n * 6 + 1024 };

	if (setrlimit(RLIMIT_NOFILE, &want) == 0)
		return;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* The peers: connect n times, send one request on each, then either keep
 * every connection open until told to stop, or close each one when its
 * server side's FIN arrives ("prompt"). */
static void peers(struct sockaddr_in addr, int n, int prompt, int go_fd)
{
	int *fds = calloc(n, sizeof *fds);
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fds[i], (struct sockaddr *)&addr, sizeof addr) < 0)
			_exit(2);
		if (write(fds[i], "GET 1\n", 6) != 6)
			_exit(3);
	}
	char c;
	if (!prompt) {
		if (read(go_fd, &c, 1) < 0) /* the parent is done measuring */
			_exit(4);
		_exit(0);
	}
	for (int left = n; left;) {
		for (int i = 0; i < n; i++) {
			if (fds[i] < 0)
				continue;
			struct pollfd p = { .fd = fds[i], .events = POLLIN };
			if (poll(&p, 1, 0) == 1 && read(fds[i], &c, 1) <= 0) {
				close(fds[i]);
				fds[i] = -1;
				left--;
			}
		}
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "idle") && strcmp(argv[1], "pending") &&
			  strcmp(argv[1], "prompt"))) {
		fprintf(stderr, "usage: closebench idle|pending|prompt N\n");
		return 2;
	}
	int n = atoi(argv[2]), idle = !strcmp(argv[1], "idle"),
	    prompt = !strcmp(argv[1], "prompt");
	raise_fd_limit(n);
	signal(SIGPIPE, SIG_IGN);

	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof addr;
	int l = socket(AF_INET, SOCK_STREAM, 0), go[2];
	if (bind(l, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(l, 4096) < 0 ||
	    getsockname(l, (struct sockaddr *)&addr, &len) < 0 || pipe(go) < 0) {
		perror("listen");
		return 1;
	}
	pid_t child = fork();
	if (child == 0) {
		close(go[1]);
		peers(addr, n, prompt, go[0]);
	}
	close(go[0]);

	int *conns = calloc(n, sizeof *conns);
	double *lat = calloc(n, sizeof *lat);
	for (int i = 0; i < n; i++) {
		conns[i] = accept(l, NULL, NULL);
		if (conns[i] < 0) {
			perror("accept");
			return 1;
		}
		if (idle) {
			char buf[8]; /* read the request: nothing left unread */
			if (read(conns[i], buf, 6) != 6)
				return 1;
		}
	}
	/* Let every request arrive, so each pending close really has input. */
	for (int i = 0; !idle && i < n; i++) {
		struct pollfd p = { .fd = conns[i], .events = POLLIN };
		poll(&p, 1, 1000);
	}
	long rss_before = rss_kb();
	size_t heap_before = malloc_bytes();
	for (int i = 0; i < n; i++) {
		double t0 = now_us();
		close(conns[i]);
		lat[i] = now_us() - t0;
	}
	/* Let a background reaper, if any, take every socket over. */
	usleep(300000);
	long rss_after = rss_kb();
	size_t heap_after = malloc_bytes();
	if (!prompt && write(go[1], "x", 1) != 1)
		return 1;
	waitpid(child, NULL, 0);

	qsort(lat, n, sizeof *lat, cmp_double);
	printf("{\"case\": \"%s\", \"n\": %d, \"median_us\": %.2f, \"p99_us\": %.2f, "
	       "\"max_us\": %.2f, \"rss_growth_kb\": %ld, \"malloc_growth_bytes\": %ld}\n",
	       argv[1], n, lat[n / 2], lat[(int)(n * 0.99)], lat[n - 1], rss_after - rss_before,
	       (long)heap_after - (long)heap_before);
	return 0;
}
