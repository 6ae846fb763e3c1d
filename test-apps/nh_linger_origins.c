/* nh_linger_origins.c: SO_LINGER {1, 0} (an abortive close: the peer sees a
 * reset) reaches an accepted socket by roads other than a setsockopt() on
 * the socket itself, and the close must still abort:
 *   listener   set on the listener: every socket accepted from it has it;
 *   syscall    set with syscall(SYS_setsockopt) on the accepted socket;
 *   inherited  set on the listener by this program, which then execs itself:
 *              the new program only accepts from the listener it inherited.
 * Each prints what the peer's read saw after the close. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tcp_pair.h"

static const struct linger abort_close = { 1, 0 };

/* A client connected to the listener at a, the server side accepted, the
 * request read (nothing unread: only SO_LINGER makes the close abort). */
static int serve(int listener, const struct sockaddr_in *a, int *client)
{
	char req[8];

	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (const struct sockaddr *)a, sizeof *a) < 0)
		exit(1);
	int s = accept(listener, NULL, NULL);
	if (s < 0 || write(*client, "REQUEST\n", 8) != 8 || read(s, req, sizeof req) != 8)
		exit(1);
	return s;
}

static void close_and_report(const char *road, int s, int client)
{
	char b;
	struct pollfd p = { .fd = client, .events = POLLIN };

	printf("%s: close %d\n", road, close(s));
	poll(&p, 1, 2000);
	errno = 0;
	ssize_t n = read(client, &b, 1);
	printf("%s: peer's read: %zd %s\n", road, n, n < 0 ? strerrorname_np(errno) : "ok");
	close(client);
}

static void on_listener(void)
{
	struct sockaddr_in a;
	int client, l = pair_listener(&a);

	setsockopt(l, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
	int s = serve(l, &a, &client);
	close(l);
	close_and_report("listener", s, client);
}

static void by_syscall(void)
{
	struct sockaddr_in a;
	int client, l = pair_listener(&a);
	int s = serve(l, &a, &client);

	close(l);
	syscall(SYS_setsockopt, s, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
	close_and_report("syscall", s, client);
}

static void inherited(const char *self, int listener)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;

	if (listener < 0) { /* before the exec */
		listener = pair_listener(&a);
		setsockopt(listener, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
		char fd[16];
		snprintf(fd, sizeof fd, "%d", listener);
		fflush(stdout);
		execl(self, self, "inherited", fd, (char *)NULL);
		exit(1);
	}
	if (getsockname(listener, (struct sockaddr *)&a, &len) < 0)
		exit(1);
	int client, s = serve(listener, &a, &client);
	close_and_report("inherited", s, client);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2) {
		inherited(argv[0], atoi(argv[2]));
		return 0;
	}
	on_listener();
	by_syscall();
	inherited(argv[0], -1);
	return 0;
}
