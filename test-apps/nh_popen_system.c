/* nh_popen_system.c: a connection inherited by the shell of popen() or
 * system() (not close-on-exec, as inetd-style and CGI servers pass it), whose
 * command serves it after the program has closed its own copy. The command
 * reads the client's request and writes a reply big enough to be still
 * queued; the client must receive the whole reply, then end-of-file. The
 * commands run with a clean environment (no LD_PRELOAD). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLY_SIZE 2000000
#define REQUEST "GET /\n"

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
	setsockopt(*client, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	if (connect(*client, (struct sockaddr *)&a, sizeof a) < 0)
		exit(1);
	int s = accept(l, NULL, NULL); /* inherited by the commands */
	close(l);
	/* The request stays unread here: the command reads it. */
	if (s < 0 || s > 9 || write(*client, REQUEST, strlen(REQUEST)) != (ssize_t)strlen(REQUEST))
		exit(1);
	return s;
}

static void client_reads(int client)
{
	static char buf[65536];
	long got = 0;
	ssize_t n;

	while ((n = read(client, buf, sizeof buf)) > 0)
		got += n;
	printf("  client received %s of the reply, then %s\n",
	       got == REPLY_SIZE ? "all" : got == 0 ? "none" : "part",
	       n == 0 ? "end-of-file" : strerrorname_np(errno));
	close(client);
}

/* The command waits for "go" on descriptor `go`, then serves descriptor s. */
static void command(char *out, size_t size, int go, int s)
{
	snprintf(out, size, "read go <&%d; head -c %zu <&%d >/dev/null; head -c %d /dev/zero >&%d",
		 go, strlen(REQUEST), s, REPLY_SIZE, s);
}

static void with_popen(void)
{
	int client, s = connected(&client);
	char cmd[256];

	command(cmd, sizeof cmd, 0, s);
	FILE *f = popen(cmd, "w");
	printf("popen: %s\n", f ? "ok" : strerrorname_np(errno));
	if (!f)
		exit(1);
	printf("  close of the program's copy: %d\n", close(s));
	fputs("go\n", f);
	fflush(f);
	client_reads(client);
	int status = pclose(f);
	printf("  pclose: command exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void with_system(void)
{
	int client, s = connected(&client), go[2];
	char cmd[256], bg[300];

	if (pipe(go) < 0 || go[0] > 9)
		exit(1);
	command(cmd, sizeof cmd, go[0], s);
	snprintf(bg, sizeof bg, "(%s) &", cmd);
	int status = system(bg);
	printf("system: shell exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	printf("  close of the program's copy: %d\n", close(s));
	close(go[0]);
	if (write(go[1], "go\n", 3) != 3)
		exit(1);
	close(go[1]);
	client_reads(client);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	unsetenv("LD_PRELOAD");
	setvbuf(stdout, NULL, _IONBF, 0);
	with_popen();
	with_system();
	return 0;
}
