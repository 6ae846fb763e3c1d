/* nh_fd_limit.c: a program at its RLIMIT_NOFILE gets exactly as many
 * descriptors as it would alone. Run as `nh_fd_limit SOFT`: it sets its soft
 * limit and re-executes itself, so that everything loaded starts under it.
 * Then, for each of several descriptor-creating calls (open, fopen, opendir,
 * socket, pipe, eventfd, dup): it closes 8 connections with unread input
 * (what a lingering close acts on; their peers stay open), makes
 * descriptors until EMFILE, prints how many it got, and drops them again.
 * Last, socketpair with one and with two numbers free. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tcp_pair.h"

#define LINGERS 8

/* One way of making descriptors: how many it makes per call. */
struct creator {
	const char *name;
	int per_call;
	int (*make)(void);
};

static int by_open(void) { return open("/dev/null", O_RDONLY); }
static int by_fopen(void)
{
	FILE *f = fopen("/dev/null", "r");
	return f ? fileno(f) : -1; /* never closed with fclose: the fill is dropped by number */
}
static int by_opendir(void)
{
	DIR *d = opendir("/");
	return d ? dirfd(d) : -1;
}
static int by_socket(void) { return socket(AF_INET, SOCK_STREAM, 0); }
static int by_pipe(void)
{
	int p[2];
	return pipe(p) < 0 ? -1 : p[1];
}
static int by_eventfd(void) { return eventfd(0, EFD_CLOEXEC); }
static int by_dup(void) { return dup(0); }

static const struct creator creators[] = {
	{ "open", 1, by_open },       { "fopen", 1, by_fopen }, { "opendir", 1, by_opendir },
	{ "socket", 1, by_socket },   { "pipe", 2, by_pipe },   { "eventfd", 1, by_eventfd },
	{ "dup", 1, by_dup },
};

/* Connections closed with unread input (what a lingering close acts on);
 * their peers stay open, in clients[]. */
static void close_lingering(int clients[LINGERS])
{
	for (int i = 0; i < LINGERS; i++)
		close(tcp_pair(&clients[i]));
	int other = socket(AF_INET, SOCK_STREAM, 0);
	close(other);
}

/* Descriptors until EMFILE; then every descriptor above `keep` goes. */
static void fill(const struct creator *c, int keep)
{
	int made = 0;

	errno = 0;
	while (c->make() >= 0)
		made += c->per_call;
	printf("%s: %d descriptors, then %s\n", c->name, made, strerrorname_np(errno));
	closefrom(keep + 1);
}

static void run(void)
{
	int clients[LINGERS];
	int keep = dup(0); /* the highest number the program keeps */

	close(keep);
	keep--;
	for (size_t i = 0; i < sizeof creators / sizeof *creators; i++) {
		close_lingering(clients);
		fill(&creators[i], keep); /* the peers go too */
	}
	printf("socketpair at the limit, one number free:\n");
	close_lingering(clients);
	int sv[2], last = -1, fd;
	while ((fd = open("/dev/null", O_RDONLY)) >= 0)
		last = fd;
	close(last);
	errno = 0;
	int r = socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	printf("  socketpair: %s\n", r == 0 ? "ok" : strerrorname_np(errno));
	close(last - 1);
	r = socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	printf("  and with two: %s\n", r == 0 ? "ok" : strerrorname_np(errno));
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "--run") == 0) {
		run();
		return 0;
	}
	if (argc != 2)
		return 2;
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = strtoul(argv[1], NULL, 10);
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		perror("setrlimit");
		return 1;
	}
	printf("soft limit %lu\n", (unsigned long)rl.rlim_cur);
	execl("/proc/self/exe", argv[0], "--run", argv[1], (char *)NULL);
	perror("exec");
	return 1;
}
