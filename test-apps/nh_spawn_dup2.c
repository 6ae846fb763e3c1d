/* nh_spawn_dup2.c: a spawner hands an accepted connection to a handler
 * program with posix_spawn, the connection dup'd onto the handler's stdin
 * and stdout (posix_spawn_file_actions_adddup2), as inetd-style servers and
 * Rust's Command do. The connection is close-on-exec in the spawner (the
 * default of most runtimes) and the spawner closes its copy at once, with the
 * client's second request still unread. The handler reads that request and
 * writes a reply big enough to be still queued; the client must receive the
 * whole reply, then end-of-file.
 *
 * Usage: nh_spawn_dup2            (the spawner, its client in-process)
 *        nh_spawn_dup2 handler    (what it spawns) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLY_SIZE 2000000
#define REQUEST "GET /\n"
#define REQ_LEN 6

extern char **environ;

static int handler(void)
{
	static char reply[REPLY_SIZE];
	char req[REQ_LEN];

	memset(reply, 'r', sizeof reply);
	if (read(0, req, REQ_LEN) != REQ_LEN)
		return 3;
	for (size_t off = 0; off < sizeof reply;) {
		ssize_t n = write(1, reply + off, sizeof reply - off);
		if (n < 0)
			return 4;
		off += (size_t)n;
	}
	return 0;
}

static int connected(int *client)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int small = 32 * 1024;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0)
		exit(1);
	*client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* A small window keeps most of the reply queued at the server. */
	setsockopt(*client, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	if (connect(*client, (struct sockaddr *)&a, sizeof a) < 0)
		exit(1);
	int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	return s;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "handler") == 0)
		return handler();

	int client, s = connected(&client), status;
	char req[REQ_LEN], *hargv[] = { "nh_spawn_dup2", "handler", NULL };
	posix_spawn_file_actions_t fa;
	pid_t pid;

	signal(SIGPIPE, SIG_IGN);
	/* Two pipelined requests; the spawner reads the first one only. */
	if (s < 0 || write(client, REQUEST REQUEST, 2 * REQ_LEN) != 2 * REQ_LEN ||
	    read(s, req, REQ_LEN) != REQ_LEN)
		return 1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, s, 0);
	posix_spawn_file_actions_adddup2(&fa, s, 1);
	int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, hargv, environ);
	posix_spawn_file_actions_destroy(&fa);
	printf("posix_spawn: %s\n", rc ? strerrorname_np(rc) : "ok");
	printf("spawner's close of its copy: %d\n", close(s));
	if (rc)
		return 1;

	static char buf[65536];
	long got = 0;
	ssize_t n;
	while ((n = read(client, buf, sizeof buf)) > 0)
		got += n;
	printf("client received %s of the reply, then %s\n",
	       got == REPLY_SIZE ? "all" : got == 0 ? "none" : "part",
	       n == 0 ? "end-of-file" : strerrorname_np(errno));
	close(client);
	if (waitpid(pid, &status, 0) != pid)
		return 1;
	if (WIFEXITED(status))
		printf("handler exited %d\n", WEXITSTATUS(status));
	else
		printf("handler killed by %s\n", sigabbrev_np(WTERMSIG(status)));
	return 0;
}
