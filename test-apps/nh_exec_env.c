/* nh_exec_env.c: the environment a program gives the programs it starts is
 * exactly the one they get: an explicitly empty envp stays empty, a chosen
 * one is not added to, whether by execve, execle or posix_spawn. The
 * program holds a TCP socket meanwhile (a server spawning helpers). Each
 * started program is env(1), printing its environment between markers. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void finish(const char *how, pid_t pid)
{
	int status;

	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		exit(1);
	printf("--- end of %s (env exited %d)\n", how,
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	fflush(stdout);
}

static void by_execve(const char *how, char *const envp[])
{
	char *argv[] = { "env", NULL };

	printf("--- environment given by %s:\n", how);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		execve("/usr/bin/env", argv, envp);
		_exit(127);
	}
	finish(how, pid);
}

static void by_execle(void)
{
	char *empty[] = { NULL };

	printf("--- environment given by execle, empty:\n");
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		execle("/usr/bin/env", "env", (char *)NULL, empty);
		_exit(127);
	}
	finish("execle, empty", pid);
}

static void by_posix_spawn(const char *how, char *const envp[])
{
	char *argv[] = { "env", NULL };
	pid_t pid;

	printf("--- environment given by %s:\n", how);
	fflush(stdout);
	if (posix_spawn(&pid, "/usr/bin/env", NULL, NULL, argv, envp) != 0)
		exit(1);
	finish(how, pid);
}

int main(void)
{
	char *empty[] = { NULL };
	char *chosen[] = { "ONLY=this", "AND=that", NULL };
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0)
		return 1;
	by_execve("execve, empty", empty);
	by_execve("execve, chosen", chosen);
	by_execle();
	by_posix_spawn("posix_spawn, empty", empty);
	by_posix_spawn("posix_spawn, chosen", chosen);
	close(s);
	return 0;
}
