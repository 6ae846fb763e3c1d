/* nh_exec_other_user.c: a root server with a connection forks a child that
 * drops to another user (nobody) and execs a program: that program must
 * get exactly the descriptors it was given (0, 1, 2), nothing of its
 * parent's. It lists them (ls /proc/self/fd), then the parent serves its
 * connection, which must behave as before. Needs root to change user;
 * otherwise it says so and does the rest. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tcp_pair.h"

#define NOBODY 65534

int main(void)
{
	int client, status;
	char req[8];

	setvbuf(stdout, NULL, _IOLBF, 0);
	int s = tcp_pair(&client);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0) {
			printf("cannot change user: %s\n", strerrorname_np(errno));
			_exit(0);
		}
		execl("/bin/ls", "ls", "/proc/self/fd", (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	printf("child as nobody: status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	printf("server read: %zd\n", read(s, req, sizeof req));
	printf("server write: %zd\n", write(s, "REPLY\n", 6));
	close(s);
	printf("client got: %s\n", pair_received(client, 2000, req, sizeof req));
	return 0;
}
