/*
 * forkbooks -- fork storms while sockets linger, and a connection held by
 * many processes at once, forked and exec'd, that each write a part of the
 * reply and let go in their own time.
 *
 *   forkbooks linger [--conns K] [--forks F] [--hold-ms H] [--reply-size B]
 *     The server writes K connections their reply and closes them (input
 *     unread); each client then holds its connection H ms more, sending a
 *     byte every 20 ms, before it closes. Meanwhile the server forks F
 *     children one after the other: each counts the sockets it holds (the
 *     listener excluded) and exit()s, _exit()s or execs /bin/true. JSON:
 *     forks, children_failed, child_max_sockets, the sockets the server
 *     process holds (its own and any held for it) before and after the
 *     storm (held_before, held_after) and how long the storm took
 *     (storm_ms), and its sockets once the clients are gone (sockets_left,
 *     after up to 10 s).
 *   forkbooks books [--rounds R] [--holders K] [--reply-size B]
 *     For each of R connections the server writes B bytes, then starts K
 *     holders and closes its own descriptor at once: each holder (half of
 *     them forked, half forked and exec'd as `forkbooks holder FD I`)
 *     waits 0-3 ms, writes a 64-byte part "PART <i>", dup()s the socket,
 *     closes the original, waits 0-3 ms more and closes the dup. The client
 *     sends pipelined input all the while (so that a holder's write after a
 *     premature half-close fails, and the last close has input unread), and
 *     checks B bytes, every part exactly once and a clean end of stream.
 *     JSON: holders_failed (a write or a close that failed, or an exit
 *     status not 0).
 *
 * A client process forked first reads and checks every reply; its JSON line
 * ("client": complete, lost, reset, failed) follows the server's.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/wait.h>

#include "stress.h"

#define PART 64

static void usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "forkbooks: %s\n", msg);
	fputs("usage: forkbooks linger [--conns K] [--forks F] [--hold-ms H] [--reply-size B]\n"
	      "       forkbooks books [--rounds R] [--holders K] [--reply-size B]\n", stderr);
	exit(2);
}

static struct {
	long conns, forks, hold_ms, holders;
	size_t reply;
} opt = { .conns = 16, .forks = 100, .hold_ms = 2500, .holders = 8, .reply = 200000 };

static char *self_path;

static void pause_us(long us)
{
	struct timespec ts = { us / 1000000, us % 1000000 * 1000 };
	nanosleep(&ts, NULL);
}

static int waited_status(pid_t pid)
{
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void print_client(const struct stress_tally *t, long conns)
{
	printf("{\"client\": true, \"conns\": %ld, \"complete\": %lu, \"lost\": %lu, "
	       "\"reset\": %lu, \"failed\": %lu}\n", conns, atomic_load(&t->complete),
	       atomic_load(&t->lost), atomic_load(&t->reset), atomic_load(&t->failed));
	fflush(stdout);
}

static int connect_to(const struct sockaddr_in *a)
{
	int c = socket(AF_INET, SOCK_STREAM, 0);

	if (c < 0 || connect(c, (const struct sockaddr *)a, sizeof *a) < 0) {
		perror("connect");
		_exit(1);
	}
	return c;
}

/* ---- linger: a fork storm while the connections linger -------------------- */

/* The reply read whole; then H ms of a byte every 20 ms (a reset shows). */
static void *linger_client_one(void *arg)
{
	const struct sockaddr_in *a = ((void **)arg)[0];
	struct stress_tally *t = ((void **)arg)[1];
	static const char junk[STRESS_PIPELINED] = { 'x' };
	int c = connect_to(a);
	enum stress_outcome o = STRESS_FAILED;

	if (write(c, "REQUEST\n", 8) == 8 && write(c, junk, sizeof junk) == sizeof junk)
		o = stress_read_reply(c, opt.reply, 20000);
	for (int64_t until = pair_now_ms() + opt.hold_ms; o == STRESS_COMPLETE &&
	     pair_now_ms() < until; pause_us(20000))
		if (send(c, "x", 1, MSG_NOSIGNAL) != 1)
			o = errno == ECONNRESET || errno == EPIPE ? STRESS_RESET : STRESS_FAILED;
	stress_count(t, o);
	close(c);
	return NULL;
}

static void linger_client(const struct sockaddr_in *a)
{
	struct stress_tally t = { 0 };
	void *arg[2] = { (void *)a, &t };
	pthread_t th[256];

	for (long i = 0; i < opt.conns; i++)
		pthread_create(&th[i], NULL, linger_client_one, arg);
	for (long i = 0; i < opt.conns; i++)
		pthread_join(th[i], NULL);
	print_client(&t, opt.conns);
}

static int listener;

static void fork_one(long i, long *failed, long *max_sockets)
{
	pid_t pid = fork();

	if (pid == 0) {
		long all, socks;
		stress_fds(listener, &all, &socks);
		if (socks)
			_exit(socks > 100 ? 100 : (int)socks);
		if (i % 3 == 0)
			exit(0);
		if (i % 3 == 1)
			_exit(0);
		execl("/bin/true", "true", (char *)NULL);
		_exit(126);
	}
	int st = pid < 0 ? -1 : waited_status(pid);
	if (st > 0 && st <= 100 && st > *max_sockets)
		*max_sockets = st;
	if (st > 100 || st < 0)
		(*failed)++;
}

static void linger_server(void)
{
	long failed = 0, max_sockets = 0, left;

	for (long i = 0; i < opt.conns; i++) {
		int s = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		if (s < 0 || !stress_write_reply(s, opt.reply))
			perror("accept/write");
		close(s);
	}
	long all, held_before, held_after;
	int64_t start = pair_now_ms();
	stress_fds(listener, &all, &held_before);
	for (long i = 0; i < opt.forks; i++)
		fork_one(i, &failed, &max_sockets);
	stress_fds(listener, &all, &held_after);
	long storm_ms = (long)(pair_now_ms() - start);
	long drain_ms = stress_drain(listener, 10000 + opt.hold_ms, &left);
	printf("{\"server\": true, \"forks\": %ld, \"children_failed\": %ld, "
	       "\"child_max_sockets\": %ld, \"held_before\": %ld, \"held_after\": %ld, "
	       "\"storm_ms\": %ld, \"sockets_left\": %ld, \"drain_ms\": %ld}\n",
	       opt.forks, failed, max_sockets, held_before, held_after, storm_ms, left, drain_ms);
	fflush(stdout);
}

/* ---- books: one connection, many holders ----------------------------------- */

static bool write_part(int fd, long i)
{
	char part[PART];

	memset(part, '.', sizeof part);
	int n = snprintf(part, sizeof part, "PART %ld ", i);
	part[n] = '.';
	part[PART - 1] = '\n';
	return write(fd, part, PART) == PART;
}

/* A holder: its part, a dup, the original closed, then the dup. */
static int hold(int fd, long i)
{
	srand((unsigned)(getpid() * 7919 + i));
	pause_us(rand() % 3000);
	if (!write_part(fd, i))
		return 3;
	int d = dup(fd);
	if (d < 0 || close(fd) != 0)
		return 4;
	pause_us(rand() % 3000);
	return close(d) == 0 ? 0 : 5;
}

static void start_holder(int fd, long i, pid_t *pid)
{
	*pid = fork();
	if (*pid != 0)
		return;
	close(listener);
	if (i % 2) {
		char fds[16], is[16];
		snprintf(fds, sizeof fds, "%d", fd);
		snprintf(is, sizeof is, "%ld", i);
		execl(self_path, "forkbooks", "holder", fds, is, (char *)NULL);
		_exit(6);
	}
	int st = hold(fd, i);
	if (i % 4 == 0)
		exit(st);
	_exit(st);
}

static void books_server(void)
{
	long failed = 0;
	pid_t pids[64];

	for (long r = 0; r < opt.conns; r++) {
		int s = accept(listener, NULL, NULL); /* inherited by the exec'd holders */
		if (s < 0 || !stress_write_reply(s, opt.reply))
			perror("accept/write");
		for (long i = 0; i < opt.holders; i++)
			start_holder(s, i, &pids[i]);
		close(s);
		for (long i = 0; i < opt.holders; i++)
			failed += pids[i] < 0 || waited_status(pids[i]) != 0;
	}
	printf("{\"server\": true, \"rounds\": %ld, \"holders\": %ld, \"holders_failed\": %ld}\n",
	       opt.conns, opt.holders, failed);
	fflush(stdout);
}

/* Reads the reply bytes, then every part once, then the end of stream. */
static enum stress_outcome read_parts(int c, long holders)
{
	size_t total = opt.reply + (size_t)holders * PART, got = 0;
	char *buf = malloc(total + 1);
	bool seen[64] = { false }, ok = true;
	int64_t until = pair_now_ms() + 20000;

	for (;;) {
		struct pollfd p = { .fd = c, .events = POLLIN };
		int64_t left = until - pair_now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			free(buf);
			return STRESS_FAILED;
		}
		ssize_t n = read(c, buf + got, total + 1 - got);
		if (n < 0) {
			free(buf);
			return errno == ECONNRESET ? STRESS_RESET : STRESS_FAILED;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > total)
			break;
		/* More input while the holders work: the last close finds it unread. */
		send(c, "more\n", 5, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	for (size_t i = 0; ok && i < opt.reply && i < got; i++)
		ok = buf[i] == stress_byte(i);
	for (size_t off = opt.reply; ok && off + PART <= got; off += PART) {
		long i = strtol(buf + off + 5, NULL, 10);
		ok = !strncmp(buf + off, "PART ", 5) && i >= 0 && i < holders && !seen[i];
		if (ok)
			seen[i] = true;
	}
	free(buf);
	return ok && got == total ? STRESS_COMPLETE : STRESS_LOST;
}

static void books_client(const struct sockaddr_in *a)
{
	static const char junk[STRESS_PIPELINED] = { 'x' };
	struct stress_tally t = { 0 };

	for (long r = 0; r < opt.conns; r++) {
		int c = connect_to(a);
		enum stress_outcome o = STRESS_FAILED;
		if (write(c, "REQUEST\n", 8) == 8 && write(c, junk, sizeof junk) == sizeof junk)
			o = read_parts(c, opt.holders);
		stress_count(&t, o);
		close(c);
	}
	print_client(&t, opt.conns);
}

/* ---- main ----------------------------------------------------------------- */

static void parse(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "conns", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'n' },
		{ "forks", required_argument, NULL, 'f' },
		{ "hold-ms", required_argument, NULL, 'H' },
		{ "holders", required_argument, NULL, 'k' },
		{ "reply-size", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	optind = 2;
	for (int ch; (ch = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
		long v = atol(optarg);
		switch (ch) {
		case 'n': opt.conns = v; break;
		case 'f': opt.forks = v; break;
		case 'H': opt.hold_ms = v; break;
		case 'k': opt.holders = v; break;
		case 'r': opt.reply = (size_t)v; break;
		default: usage(NULL);
		}
	}
	if (opt.conns < 1 || opt.conns > 256 || opt.forks < 0 || opt.hold_ms < 0 ||
	    opt.holders < 1 || opt.holders > 64 || opt.reply < 1)
		usage("a number out of range");
}

int main(int argc, char **argv)
{
	struct sockaddr_in a;

	if (argc == 4 && !strcmp(argv[1], "holder"))
		return hold(atoi(argv[2]), atol(argv[3]));
	if (argc < 2 || (strcmp(argv[1], "linger") && strcmp(argv[1], "books")))
		usage("linger or books?");
	bool books = !strcmp(argv[1], "books");
	parse(argc, argv);
	self_path = realpath("/proc/self/exe", NULL);
	signal(SIGPIPE, SIG_IGN);
	listener = stress_listener(&a);
	fflush(stdout);
	pid_t client = fork();
	if (client == 0) {
		close(listener);
		books ? books_client(&a) : linger_client(&a);
		_exit(0);
	}
	books ? books_server() : linger_server();
	return waited_status(client) == 0 ? 0 : 1;
}
