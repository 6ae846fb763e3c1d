/* nh_closefrom_exec.c: a child started after the program closed all its
 * descriptors (closefrom, close_range, a loop over /proc/self/fd, a loop up
 * to the limit, as daemons and subprocess modules do) sees exactly 0, 1 and
 * 2; a child started without that sees the program's inheritable
 * descriptors and nothing else. The program holds TCP sockets meanwhile. The
 * child lists /proc/self/fd.
 *
 * Usage: nh_closefrom_exec         (the program)
 *        nh_closefrom_exec list    (the child) */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int list(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char seen[4096] = "";

	if (!d)
		return 1;
	/* readdir gives them in ascending order. */
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
			snprintf(seen + strlen(seen), sizeof seen - strlen(seen), " %s", e->d_name);
	closedir(d);
	printf("  child sees:%s\n", seen);
	return 0;
}

/* Closes every descriptor it finds open from 3 up, as listed. */
static bool close_listed(void)
{
	int fds[4096], n = 0;
	bool all_ok = true;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		return false;
	while ((e = readdir(d)) && n < 4096)
		if (e->d_name[0] != '.' && atoi(e->d_name) >= 3 && atoi(e->d_name) != dirfd(d))
			fds[n++] = atoi(e->d_name);
	closedir(d);
	for (int i = 0; i < n; i++)
		all_ok &= close(fds[i]) == 0;
	return all_ok;
}

static bool close_up_to_limit(void)
{
	long max = sysconf(_SC_OPEN_MAX);

	for (long fd = 3; fd < max; fd++)
		close((int)fd);
	return true;
}

static void child_after(const char *how, char *const envp[])
{
	char *argv[] = { "nh_closefrom_exec", "list", NULL };
	bool ok = true;

	printf("%s, then exec:\n", how);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		if (strcmp(how, "closefrom(3)") == 0)
			closefrom(3);
		else if (strcmp(how, "close_range(3, ~0U, 0)") == 0)
			ok = close_range(3, ~0U, 0) == 0;
		else if (strcmp(how, "close what /proc/self/fd lists") == 0)
			ok = close_listed();
		else if (strcmp(how, "close 3 up to the limit") == 0)
			ok = close_up_to_limit();
		if (!ok)
			_exit(3);
		execve("/proc/self/exe", argv, envp);
		_exit(127);
	}
	int status;
	if (waitpid(pid, &status, 0) != pid)
		exit(1);
	printf("  child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "list") == 0)
		return list();

	char *bare[] = { "PATH=/usr/bin:/bin", NULL };
	int tcp = socket(AF_INET, SOCK_STREAM, 0);
	int in1 = open("/dev/null", O_RDONLY), in2 = open("/dev/null", O_RDONLY);
	int cloexec = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (tcp < 0 || in1 < 0 || in2 < 0 || cloexec < 0)
		return 1;
	child_after("closefrom(3)", environ);
	child_after("close_range(3, ~0U, 0)", environ);
	child_after("close what /proc/self/fd lists", environ);
	child_after("close 3 up to the limit", environ);
	child_after("nothing closed, a bare environment", bare);
	return 0;
}
