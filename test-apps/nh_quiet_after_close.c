/*
 * nh_quiet_after_close -- a process that has closed a connection, while a
 * child made with a bare clone() still holds the socket, stays quiet: over
 * one second of doing nothing, its threads are switched in and out only a
 * few times (a thread spinning on an end-of-file event would be woken
 * hundreds of times).
 *
 * The server reads nothing of the client's request, replies and closes; the
 * client, a moment later, reads the reply and ends its side; the child
 * sleeps two seconds.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "nh_readside.h"

/* Context switches of every thread of this process so far. */
static long switches(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	long total = 0;

	if (!d)
		nh_die("opendir");
	while ((de = readdir(d)) != NULL) {
		char path[300], line[128];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/status", de->d_name);
		FILE *f = fopen(path, "r");
		while (f && fgets(line, sizeof line, f)) {
			long n;
			if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1 ||
			    sscanf(line, "nonvoluntary_ctxt_switches: %ld", &n) == 1)
				total += n;
		}
		if (f)
			fclose(f);
	}
	closedir(d);
	return total;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int main(void)
{
	struct pair p = nh_pair();
	char buf[64];
	int status;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (send(p.client, "request", 7, 0) != 7)
		nh_die("send");
	nh_wait_readable(p.server);
	printf("server replies: %zd\n", send(p.server, "reply", 5, 0));
	/* A bare clone: the child shares nothing but the descriptors. */
	long pid = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
	if (pid == 0) {
		struct timespec two = { 2, 0 };
		syscall(SYS_nanosleep, &two, NULL);
		syscall(SYS_exit_group, 0);
	}
	if (pid < 0)
		nh_die("clone");
	printf("close: %d\n", close(p.server));
	sleep_ms(100); /* the client takes its time: the socket lingers meanwhile */
	printf("client reads: %zd\n", recv(p.client, buf, sizeof buf, 0));
	printf("client ends its side: %d\n", shutdown(p.client, SHUT_WR));
	sleep_ms(200);
	long before = switches();
	sleep_ms(1000);
	long during = switches() - before;
	printf("context switches in one quiet second: %s\n",
	       during < 50 ? "fewer than 50" : "50 or more");
	waitpid((pid_t)pid, &status, 0);
	printf("child: exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	close(p.client);
	return 0;
}
