/*
 * storm -- close storms from many threads on one process's sockets, while
 * other threads accept, dup2 and fork (the program's own races are none: each
 * descriptor is closed once, by whichever thread takes it off a queue).
 *
 *   storm storm [--conns N] [--closers T] [--dups D] [--reply-size B] [--clients C]
 *               [--way dup|dup2|fork]
 *     An acceptor writes each connection its reply and lets go of it one of
 *     three ways, in turn: D-1 dup()s and the original, each closed by one of
 *     T closer threads (whichever closes last releases the socket); handed to
 *     a dup2 thread, which dup2()s /dev/null over it, or dup2()s one
 *     connection onto another and closes both; or closed by a closer while a
 *     fork child that inherited it still holds it (a forker thread forks all
 *     the while; half its children exit(), half _exit(), after 0-2 ms).
 *     --way: only that one of the three.
 *   storm dupclose [--conns N] [--reply-size B]
 *     For each connection two threads start at once: one closes it, the other
 *     dup()s it (and closes the dup when it got one).
 *
 * C client threads (in this process) connect, send a request and pipelined
 * input, and read each reply whole, checking every byte and the end of
 * stream. At the end, one JSON line: what the clients saw (complete, lost,
 * reset, failed), what was done (closes, dup2s, forks, children_failed, and
 * for dupclose dup_first/close_first), the descriptors open before and after
 * (fds_before/fds_after, the listener excluded), the sockets still open once
 * every connection is over (sockets_left, after waiting up to 10 s for them
 * to go: drain_ms), and the threads before and after.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/wait.h>

#include "stress.h"

static void usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "storm: %s\n", msg);
	fputs("usage: storm storm|dupclose [--conns N] [--closers T] [--dups D] "
	      "[--reply-size B] [--clients C] [--way dup|dup2|fork]\n", stderr);
	exit(2);
}

static struct {
	bool dupclose;
	long conns, closers, dups, clients;
	size_t reply;
	int way;        /* -1: each in turn */
} opt = { .way = -1,  .conns = 600, .closers = 16, .dups = 4, .clients = 8, .reply = 65536 };

static struct sockaddr_in addr;
static int listener, devnull;
static struct stress_tally tally;
static atomic_long next_conn, closes, dup2s, forks, children_failed, dup_first, close_first;
static atomic_bool forking = true;
static struct stress_queue closeq = STRESS_QUEUE_INIT, dup2q = STRESS_QUEUE_INIT,
			   forkq = STRESS_QUEUE_INIT;

static void *client_main(void *arg)
{
	(void)arg;
	while (atomic_fetch_add(&next_conn, 1) < opt.conns)
		stress_count(&tally, stress_client(&addr, opt.reply));
	return NULL;
}

static void close_counted(int fd)
{
	if (close(fd) != 0)
		perror("close");
	atomic_fetch_add(&closes, 1);
}

static void *closer_main(void *arg)
{
	(void)arg;
	for (int fd; (fd = stress_pop(&closeq)) >= 0;)
		close_counted(fd);
	return NULL;
}

static void dup2_over(int fd)
{
	if (dup2(devnull, fd) != fd)
		perror("dup2 /dev/null");
	atomic_fetch_add(&dup2s, 1);
	close_counted(fd);
}

/* Pairs: dup2(a, b) releases b's socket; b and a then both name a's. */
static void *dup2_main(void *arg)
{
	(void)arg;
	for (;;) {
		int a = stress_pop(&dup2q);
		if (a < 0)
			return NULL;
		int b = stress_pop(&dup2q);
		if (b < 0) {
			dup2_over(a);
			return NULL;
		}
		if (dup2(a, b) != b)
			perror("dup2");
		atomic_fetch_add(&dup2s, 1);
		close_counted(a);
		dup2_over(b);
	}
}

/* Sockets handed to the forker are closed while a fresh child holds them. */
static void close_forked(void)
{
	for (int fd; (fd = stress_trypop(&forkq)) >= 0;)
		stress_push(&closeq, fd);
}

/* Children hold whatever was open at the fork for 0-2 ms. */
static void *forker_main(void *arg)
{
	(void)arg;
	for (long i = 0; atomic_load(&forking); i++) {
		pid_t pid = fork();
		if (pid == 0) {
			struct timespec ts = { 0, (i % 3) * 1000 * 1000 };
			nanosleep(&ts, NULL);
			if (i % 2)
				exit(0);
			_exit(0);
		}
		if (pid < 0) {
			perror("fork");
			atomic_fetch_add(&children_failed, 1);
			continue;
		}
		close_forked();
		int status;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
			atomic_fetch_add(&children_failed, 1);
		atomic_fetch_add(&forks, 1);
	}
	close_forked();
	return NULL;
}

static void let_go(long i, int s)
{
	switch (opt.way >= 0 ? opt.way : i % 3) {
	case 0:
		for (long d = 1; d < opt.dups; d++) {
			int c = dup(s);
			if (c < 0)
				perror("dup");
			else
				stress_push(&closeq, c);
		}
		stress_push(&closeq, s);
		break;
	case 1:
		stress_push(&dup2q, s);
		break;
	default:
		stress_push(&forkq, s);
	}
}

/* One connection at a time: a closer and a dup()er started together. */
struct race {
	pthread_barrier_t go, done;
	int fd;
};

static void *duper_main(void *arg)
{
	struct race *r = arg;
	for (long i = 0; i < opt.conns; i++) {
		pthread_barrier_wait(&r->go);
		int d = dup(r->fd);
		if (d >= 0) {
			atomic_fetch_add(&dup_first, 1);
			close_counted(d);
		} else if (errno == EBADF) {
			atomic_fetch_add(&close_first, 1);
		} else {
			perror("dup");
		}
		pthread_barrier_wait(&r->done);
	}
	return NULL;
}

static void dupclose_accept(void)
{
	struct race r = { .fd = -1 };
	pthread_t t;

	pthread_barrier_init(&r.go, NULL, 2);
	pthread_barrier_init(&r.done, NULL, 2);
	pthread_create(&t, NULL, duper_main, &r);
	for (long i = 0; i < opt.conns; i++) {
		r.fd = accept(listener, NULL, NULL);
		if (r.fd < 0)
			perror("accept");
		else if (!stress_write_reply(r.fd, opt.reply))
			perror("write");
		pthread_barrier_wait(&r.go);
		close_counted(r.fd);
		pthread_barrier_wait(&r.done);
	}
	pthread_join(t, NULL);
}

static void storm_accept(void)
{
	pthread_t closer[64], d2, fk;

	for (long i = 0; i < opt.closers; i++)
		pthread_create(&closer[i], NULL, closer_main, NULL);
	pthread_create(&d2, NULL, dup2_main, NULL);
	pthread_create(&fk, NULL, forker_main, NULL);
	for (long i = 0; i < opt.conns; i++) {
		int s = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		if (s < 0) {
			perror("accept");
			continue;
		}
		if (!stress_write_reply(s, opt.reply))
			perror("write");
		let_go(i, s);
	}
	stress_push(&dup2q, -1);
	pthread_join(d2, NULL);
	atomic_store(&forking, false);
	pthread_join(fk, NULL);
	for (long i = 0; i < opt.closers; i++)
		stress_push(&closeq, -1);
	for (long i = 0; i < opt.closers; i++)
		pthread_join(closer[i], NULL);
}

static void parse(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "conns", required_argument, NULL, 'n' },
		{ "closers", required_argument, NULL, 't' },
		{ "dups", required_argument, NULL, 'd' },
		{ "reply-size", required_argument, NULL, 'r' },
		{ "clients", required_argument, NULL, 'c' },
		{ "way", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	if (argc < 2 || (strcmp(argv[1], "storm") && strcmp(argv[1], "dupclose")))
		usage("storm or dupclose?");
	opt.dupclose = !strcmp(argv[1], "dupclose");
	optind = 2;
	for (int ch; (ch = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
		long v = optarg ? atol(optarg) : 0;
		switch (ch) {
		case 'n': opt.conns = v; break;
		case 't': opt.closers = v; break;
		case 'd': opt.dups = v; break;
		case 'r': opt.reply = (size_t)v; break;
		case 'c': opt.clients = v; break;
		case 'w': opt.way = !strcmp(optarg, "dup") ? 0 : !strcmp(optarg, "dup2") ? 1
				  : !strcmp(optarg, "fork") ? 2 : (usage("--way dup|dup2|fork"), 0);
			  break;
		default: usage(NULL);
		}
	}
	if (opt.conns < 1 || opt.closers < 1 || opt.closers > 64 || opt.dups < 1 ||
	    opt.dups > 64 || opt.clients < 1 || opt.clients > 64 || opt.reply < 1)
		usage("a number out of range");
}

int main(int argc, char **argv)
{
	pthread_t client[64];
	long fds_before, fds_after, socks, left;

	parse(argc, argv);
	signal(SIGPIPE, SIG_IGN);   /* a reset peer is counted, not fatal */
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	listener = stress_listener(&addr);
	stress_fds(listener, &fds_before, &socks);
	int threads_before = stress_threads();

	for (long i = 0; i < opt.clients; i++)
		pthread_create(&client[i], NULL, client_main, NULL);
	if (opt.dupclose)
		dupclose_accept();
	else
		storm_accept();
	for (long i = 0; i < opt.clients; i++)
		pthread_join(client[i], NULL);

	long drain_ms = stress_drain(listener, 10000, &left);
	stress_fds(listener, &fds_after, &socks);
	printf("{\"conns\": %ld, \"complete\": %lu, \"lost\": %lu, \"reset\": %lu, \"failed\": %lu, "
	       "\"closes\": %ld, \"dup2s\": %ld, \"forks\": %ld, \"children_failed\": %ld, "
	       "\"dup_first\": %ld, \"close_first\": %ld, \"fds_before\": %ld, \"fds_after\": %ld, "
	       "\"sockets_left\": %ld, \"drain_ms\": %ld, \"threads_before\": %d, \"threads_after\": %d}\n",
	       opt.conns, atomic_load(&tally.complete), atomic_load(&tally.lost),
	       atomic_load(&tally.reset), atomic_load(&tally.failed), atomic_load(&closes),
	       atomic_load(&dup2s), atomic_load(&forks), atomic_load(&children_failed),
	       atomic_load(&dup_first), atomic_load(&close_first), fds_before, fds_after,
	       left, drain_ms, threads_before, stress_threads());
	return 0;
}
