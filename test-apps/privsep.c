/*
 * privsep -- a fork-per-connection server whose children drop to nobody, as
 * privilege-separated servers do (OpenSSH, vsftpd), and then turn hostile:
 * they write garbage over every shared writable memfd mapping they have.
 * pipeserver's protocol (common.h) on each connection.
 *
 *   privsep [--listen ADDR:PORT] [--conns N] [--mode helper|worker]
 *           [--reply-size N] [--fail-at K] [--error-size N] [--read-size N]
 *
 * --mode helper (default): per connection a child is forked that closes its
 *   copy of the connection, drops to nobody, scribbles and exits; once it is
 *   gone, the parent serves the connection itself and closes it.
 * --mode worker: the parent closes its copy right after the fork; then the
 *   child drops to nobody, serves the connection, closes it, scribbles and
 *   exits.
 * Needs root (to change user). Exit status 1 when a child failed.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <sys/wait.h>

#include "common.h"
#include "scribble.h"

#define DEFAULT_LISTEN "127.0.0.1:7000"

static struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned long conns;
	bool worker;
	struct proto_opts proto;
} opt = { .conns = 1, .proto = PROTO_DEFAULTS };

static void usage(const char *msg)
{
	usage_exit("privsep", msg,
		"usage: privsep [--listen ADDR:PORT] [--conns N] [--mode helper|worker]\n"
		"  [--reply-size N] [--fail-at K] [--error-size N] [--read-size N]\n");
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		PROTO_LONGOPTS,
		{ "listen", required_argument, NULL, 'l' },
		{ "conns", required_argument, NULL, 'n' },
		{ "mode", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	parse_addr(DEFAULT_LISTEN, ADDR_LISTEN, &opt.addr, &opt.addrlen);
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l': parse_addr(optarg, ADDR_LISTEN, &opt.addr, &opt.addrlen); break;
		case 'n': opt.conns = parse_num(optarg, 1, ULONG_MAX); break;
		case 'm':
			if (strcmp(optarg, "worker") == 0)
				opt.worker = true;
			else if (strcmp(optarg, "helper") != 0)
				usage("bad --mode");
			break;
		default:
			if (!proto_option(&opt.proto, ch, optarg))
				usage(NULL);
		}
	}
	if (optind < argc)
		usage("unexpected argument");
}

static int child_status(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The helper: nothing of the connection, only the scribbling. */
static void helper(int lfd, int cfd)
{
	close(cfd);
	close(lfd);
	if (drop_to_nobody() < 0) {
		perror("privsep: drop to nobody");
		exit(3);
	}
	scribble_shared_memfds();
	exit(0);
}

/* The worker: serves its connection as nobody, then scribbles. */
static void worker(int lfd, int cfd, int go)
{
	char byte;

	close(lfd);
	if (read(go, &byte, 1) != 1) /* the parent has let go of its copy */
		exit(4);
	if (drop_to_nobody() < 0) {
		perror("privsep: drop to nobody");
		exit(3);
	}
	bool ok = serve_requests(cfd, cfd, &opt.proto, "privsep worker");
	close(cfd);
	scribble_shared_memfds();
	exit(ok ? 0 : 1);
}

static int serve_one(int lfd, int cfd)
{
	int go[2];

	if (pipe(go) < 0)
		die("pipe");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(go[1]);
		if (opt.worker)
			worker(lfd, cfd, go[0]);
		helper(lfd, cfd);
	}
	close(go[0]);
	if (opt.worker) {
		close(cfd);
		if (write(go[1], "g", 1) != 1)
			die("write");
	}
	close(go[1]);
	int status = child_status(pid);
	if (status != 0)
		fprintf(stderr, "privsep: child exited with status %d\n", status);
	if (!opt.worker) {
		serve_requests(cfd, cfd, &opt.proto, "privsep");
		close(cfd);
	}
	return status == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	int failed = 0;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	int lfd = listen_ready(&opt.addr, opt.addrlen, 0, 64);
	for (unsigned long i = 0; i < opt.conns; i++) {
		int cfd = accept(lfd, NULL, NULL);
		if (cfd < 0) {
			if (errno == EINTR)
				continue;
			die("accept");
		}
		failed |= serve_one(lfd, cfd);
	}
	close(lfd);
	return failed;
}
