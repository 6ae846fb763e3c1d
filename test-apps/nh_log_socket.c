/* nh_log_socket.c: an inetd-style spawner hands a connection to an exec'd
 * handler as its descriptors 0, 1 and 2 (inetd's "nowait" services do,
 * xinetd too without a log target). Whatever the handler's libraries write
 * to stderr goes to the client; nothing else may. The handler answers one
 * request; the client prints exactly what it received, up to end of stream. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tcp_pair.h"

static int handler(void)
{
	char req[64];

	if (read(0, req, sizeof req) <= 0 || write(1, "REPLY\n", 6) != 6)
		return 1;
	close(1);
	close(0);
	return 0; /* descriptor 2 is closed by the exit */
}

/* The received bytes, newlines spelled out, so one line holds them all. */
static void print_received(int fd)
{
	char buf[4096];
	size_t got = 0;
	ssize_t n;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (got < sizeof buf && poll(&p, 1, 3000) > 0 &&
	       (n = read(fd, buf + got, sizeof buf - got)) > 0)
		got += (size_t)n;
	printf("client received:");
	for (size_t i = 0; i < got; i++)
		printf(buf[i] == '\n' ? "\\n" : "%c", buf[i]);
	printf("\n");
}

int main(int argc, char **argv)
{
	int client;

	if (argc > 1 && strcmp(argv[1], "--handler") == 0)
		return handler();
	setvbuf(stdout, NULL, _IOLBF, 0);
	int conn = tcp_pair(&client);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(conn, 0);
		dup2(conn, 1);
		dup2(conn, 2);
		close(conn);
		close(client);
		execl("/proc/self/exe", argv[0], "--handler", (char *)NULL);
		_exit(127);
	}
	close(conn);
	print_received(client);
	int status;
	waitpid(pid, &status, 0);
	printf("handler exit status: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 0;
}
