/*
 * nh_shutdown_errors -- shutdown() that fails does nothing: an invalid `how`
 * gives EINVAL and the connection still carries data both ways; a pipe
 * gives ENOTSOCK, a closed number EBADF, a socket never connected ENOTCONN.
 */
#define _GNU_SOURCE
#include "nh_readside.h"

static void result(const char *what, int r)
{
	printf("%s: %d %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
}

/* One byte each way: nothing was shut. */
static void still_open_both_ways(struct pair p)
{
	char c = 0;

	printf("server sends: %zd\n", send(p.server, "s", 1, 0));
	printf("client reads: %zd\n", recv(p.client, &c, 1, 0));
	printf("client sends: %zd\n", send(p.client, "c", 1, 0));
	printf("server reads: %zd\n", recv(p.server, &c, 1, 0));
}

int main(void)
{
	struct pair p = nh_pair();
	int pipefd[2];

	setvbuf(stdout, NULL, _IOLBF, 0);
	result("shutdown(conn, 7)", shutdown(p.server, 7));
	result("shutdown(conn, -1)", shutdown(p.server, -1));
	still_open_both_ways(p);
	if (pipe(pipefd) < 0)
		nh_die("pipe");
	result("shutdown(pipe, SHUT_RD)", shutdown(pipefd[0], SHUT_RD));
	result("shutdown(pipe, 7)", shutdown(pipefd[0], 7));
	close(pipefd[1]);
	result("shutdown(closed, SHUT_RDWR)", shutdown(pipefd[1], SHUT_RDWR));
	int fresh = socket(AF_INET, SOCK_STREAM, 0);
	result("shutdown(unconnected, SHUT_RD)", shutdown(fresh, SHUT_RD));
	result("shutdown(unconnected, SHUT_RDWR)", shutdown(fresh, SHUT_RDWR));
	result("shutdown(unconnected, 7)", shutdown(fresh, 7));
	result("close", close(p.server));
	close(p.client);
	return 0;
}
