/* fdops.c: exercises the descriptor calls a program makes around sockets and
 * prints each result and errno, one per line. Run twice, the outputs must be
 * identical: it tells whether anything loaded into the process changed what
 * these calls return. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *what, long result)
{
	printf("%-44s -> %ld (%s)\n", what, result, result < 0 ? strerrorname_np(errno) : "ok");
	errno = 0;
}

/* A connected TCP pair on loopback, the server side with unread input. */
static int connected_pair(int *client)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int l = socket(AF_INET, SOCK_STREAM, 0);

	bind(l, (struct sockaddr *)&a, sizeof a);
	listen(l, 4);
	getsockname(l, (struct sockaddr *)&a, &len);
	*client = socket(AF_INET, SOCK_STREAM, 0);
	connect(*client, (struct sockaddr *)&a, sizeof a);
	int s = accept(l, NULL, NULL);
	close(l);
	return s;
}

static volatile sig_atomic_t handler_result = 99;
static int handler_fd = -1;

static void on_usr1(int sig)
{
	(void)sig;
	handler_result = close(handler_fd);
}

int main(void)
{
	int client, pipefd[2];
	int s = connected_pair(&client);

	report("close(-1)", close(-1));
	report("close(4000) never opened", close(4000));
	report("pipe", pipe(pipefd));
	errno = EINTR;
	int r = close(pipefd[0]);
	report("errno kept by a successful close", r == 0 ? errno : -1);
	report("close(pipe read end) again", close(pipefd[0]));
	report("dup2(4000, s): bad oldfd leaves s open", dup2(4000, s));
	report("fcntl(s, F_GETFD) after failed dup2", fcntl(s, F_GETFD));
	report("dup2(s, s)", dup2(s, s) == s);
	report("dup3(s, s, 0)", dup3(s, s, 0));
	int d = fcntl(s, F_DUPFD_CLOEXEC, 100);
	report("fcntl(s, F_DUPFD_CLOEXEC, 100) >= 100", d >= 100);
	report("fcntl(d, F_GETFD)", fcntl(d, F_GETFD));
	report("write(client, request)", write(client, "GET 1\n", 6));
	report("close(d), a copy of s", close(d));
	report("write(s) after closing its copy", write(s, "OK\n", 3));
	char buf[16];
	report("read(client) sees the reply", read(client, buf, sizeof buf));

	pid_t pid = fork();
	if (pid == 0)
		_exit(close(s) == 0 && close(client) == 0 ? 0 : 1);
	int status;
	waitpid(pid, &status, 0);
	report("child closed its copies", WEXITSTATUS(status));
	report("write(s) after the child closed", write(s, "OK\n", 3));

	int udp = socket(AF_INET, SOCK_DGRAM, 0);
	report("close(udp)", close(udp));
	report("close(udp) again", close(udp));

	/* shutdown(SHUT_RDWR): what was queued is still read, then end-of-file. */
	int client2, s2 = connected_pair(&client2);
	report("write(client2, 5 bytes)", write(client2, "hello", 5));
	struct pollfd p = { .fd = s2, .events = POLLIN };
	report("poll(s2) sees them", poll(&p, 1, 1000));
	report("shutdown(s2, SHUT_RDWR)", shutdown(s2, SHUT_RDWR));
	report("recv(s2) after it: the queued bytes", recv(s2, buf, sizeof buf, 0));
	report("recv(s2) then: end-of-file", recv(s2, buf, sizeof buf, 0));
	report("read(s2): end-of-file", read(s2, buf, sizeof buf));
	report("read(client2): end-of-file", read(client2, buf, sizeof buf));
	report("close(s2)", close(s2));
	report("close(client2)", close(client2));

	/* A program may put files of its own at any free number, high ones
	 * included (1024..1031 here): they must be its files, and a lingering
	 * close afterwards must still behave. */
	int p2[2];
	report("pipe", pipe(p2));
	long high_ok = 0;
	for (int n = 1024; n < 1032; n++) {
		char c = 0;
		if (dup2(p2[1], n) == n && write(n, "z", 1) == 1 && read(p2[0], &c, 1) == 1 &&
		    c == 'z' && close(n) == 0)
			high_ok++;
	}
	report("dup2 onto 1024..1031, write, read back, close", high_ok);
	close(p2[0]);
	close(p2[1]);
	int client3, s3 = connected_pair(&client3);
	report("write(client3, request)", write(client3, "GET 3\n", 6));
	struct pollfd p3 = { .fd = s3, .events = POLLIN };
	report("poll(s3) sees it", poll(&p3, 1, 1000));
	report("close(s3), input unread", close(s3));
	report("close(client3)", close(client3));

	handler_fd = pipefd[1];
	signal(SIGUSR1, on_usr1);
	raise(SIGUSR1);
	report("close() from a signal handler", handler_result);
	report("close(s), input unread", close(s));
	int next = fcntl(client, F_DUPFD, s); /* lowest free number >= s */
	report("s's number is free at once", next == s);
	close(next);
	report("close(s) again", close(s));
	report("close(client)", close(client));
	return 0;
}
