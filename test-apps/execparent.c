/*
 * execparent -- a server that re-execs itself while a child it forked still
 * serves a connection the parent holds too, close-on-exec.
 *
 *   execparent [--listen ADDR:PORT] [--reply-size N] [--fail-at K]
 *              [--error-size N] [--read-size N]
 *   execparent --reap PID
 *
 * Accepts one connection (accept4 SOCK_CLOEXEC, as most runtimes accept)
 * and forks a child that serves it with pipeserver's protocol and then
 * close()s it: the error reply, with the client's later requests unread.
 * The parent does not close its own copy: it replaces itself at once with
 * `execparent --reap <child>`, and the exec drops that copy. The child's
 * close and the exec each let go of one of the two references, in either
 * order. The reaping program waits for the child and prints
 * {"conns": 1, "errors": E} (E: 1 when the child saw a write error).
 */
#define _GNU_SOURCE
#include <sys/wait.h>

#include "common.h"

static struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct proto_opts proto;
	long reap;
} opt = { .proto = PROTO_DEFAULTS, .reap = -1 };

static void usage(const char *msg)
{
	usage_exit("execparent", msg,
		   "usage: execparent [--listen ADDR:PORT] [--reply-size N] [--fail-at K]\n"
		   "                  [--error-size N] [--read-size N]\n"
		   "       execparent --reap PID\n");
}

static int reap(pid_t child)
{
	int status;

	if (waitpid(child, &status, 0) < 0)
		die("waitpid");
	printf("{\"conns\": 1, \"errors\": %d}\n",
	       WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1);
	return 0;
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "reap", required_argument, NULL, 'r' },
		PROTO_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	parse_addr(DEFAULT_LISTEN, ADDR_LISTEN, &opt.addr, &opt.addrlen);
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == 'l')
			parse_addr(optarg, ADDR_LISTEN, &opt.addr, &opt.addrlen);
		else if (ch == 'r')
			opt.reap = (long)parse_num(optarg, 1, INT_MAX);
		else if (!proto_option(&opt.proto, ch, optarg))
			usage(NULL);
	}
	if (optind < argc)
		usage("unexpected argument");
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	if (opt.reap > 0)
		return reap((pid_t)opt.reap);

	int lfd = listen_ready(&opt.addr, opt.addrlen, 0, 1);
	int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0)
		die("accept4");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(lfd);
		bool ok = serve_requests(conn, conn, &opt.proto, NULL);
		close(conn);
		_exit(ok ? 0 : 1);
	}
	char pid[24];
	snprintf(pid, sizeof pid, "%d", (int)child);
	char *const args[] = { argv[0], "--reap", pid, NULL };
	fflush(stdout);
	execv("/proc/self/exe", args);
	die("execv");
}
