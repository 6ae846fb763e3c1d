/* nh_fd_limit.c: a program at its RLIMIT_NOFILE gets exactly as many
 * descriptors as it would alone. Run as `nh_fd_limit SOFT`: it sets its soft
 * limit and re-executes itself, so that everything loaded starts under it.
 * Then it closes 8 connections with unread input (what a lingering close
 * acts on; their peers stay open), opens another socket, and opens files
 * until EMFILE; prints how many it got, then what other descriptor-creating
 * calls do once a few numbers are free again, and at the limit. */
#define _GNU_SOURCE
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

static void report(const char *what, int r)
{
	printf("  %s: %s\n", what, r >= 0 ? "ok" : strerrorname_np(errno));
}

static int files_until_full(int *last)
{
	int n = 0, fd;

	while ((fd = open("/dev/null", O_RDONLY)) >= 0) {
		*last = fd;
		n++;
	}
	printf("opened %d files, then %s\n", n, strerrorname_np(errno));
	return n;
}

static void run(void)
{
	int clients[LINGERS], last = -1, p[2];

	for (int i = 0; i < LINGERS; i++)
		close(tcp_pair(&clients[i]));
	int other = socket(AF_INET, SOCK_STREAM, 0);
	files_until_full(&last);

	printf("with three numbers free again:\n");
	close(last);
	close(last - 1);
	close(last - 2);
	report("pipe", pipe(p));
	report("eventfd", eventfd(0, EFD_CLOEXEC));
	report("epoll_create1", epoll_create1(EPOLL_CLOEXEC));
	report("socket", socket(AF_INET, SOCK_STREAM, 0));
	report("dup", dup(0));
	report("fcntl F_DUPFD_CLOEXEC", fcntl(0, F_DUPFD_CLOEXEC, 0));
	for (int i = 0; i < LINGERS; i++)
		close(clients[i]);
	close(other);
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
