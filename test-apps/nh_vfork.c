/* nh_vfork.c: vfork keeps its semantics. The child shares its parent's
 * memory (shells and spawners pass an exec errno back that way), runs no
 * atfork handler, and its exec or _exit releases nothing of the parent's
 * connections. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nh_child_conn.h"

/* Counted where any process of ours can add: a shared page. */
static int *atfork_children;

static void count_atfork_child(void)
{
	__atomic_add_fetch(atfork_children, 1, __ATOMIC_SEQ_CST);
}

static int wait_status(pid_t pid)
{
	int status;

	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void memory_is_shared(void)
{
	volatile int written_by_child = 0;
	volatile int exec_errno = 0;
	char *argv[] = { "missing", NULL };

	pid_t pid = vfork();
	if (pid == 0) {
		written_by_child = 42;
		_exit(0);
	}
	int status = wait_status(pid);
	printf("vfork child exits %d; its write seen by the parent: %s\n", status,
	       written_by_child == 42 ? "yes" : "no");

	pid = vfork();
	if (pid == 0) {
		execve("/nonexistent/missing", argv, environ);
		exec_errno = errno;
		_exit(127);
	}
	status = wait_status(pid);
	printf("vfork child's failed exec exits %d; errno passed back: %s\n", status,
	       exec_errno ? strerrorname_np(exec_errno) : "none");
}

static bool close_pending;

static void connection_survives(const char *ending)
{
	int client, s = accepted_with_request(&client);
	char *argv[] = { "true", NULL };

	pid_t pid = vfork();
	if (pid == 0) {
		if (strncmp(ending, "close", 5) == 0)
			close(s);
		if (strstr(ending, "execve"))
			execve("/bin/true", argv, environ);
		_exit(0);
	}
	printf("vfork child ending with %s exits %d\n", ending, wait_status(pid));
	reply_and_report(s, client);
	if (close_pending)
		close_with_input_unread(s, client);
	else
		close(s);
	close(client);
}

int main(int argc, char **argv)
{
	close_pending = argc > 1 && strcmp(argv[1], "--close-pending") == 0;
	atfork_children = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			       -1, 0);
	if (atfork_children == MAP_FAILED)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	pthread_atfork(NULL, NULL, count_atfork_child);
	fflush(stdout);
	/* The connections first: the parent has made and accepted sockets (and
	 * so asked who it is) before its first vfork child runs. */
	connection_survives("_exit");
	connection_survives("execve");
	connection_survives("close, _exit");
	connection_survives("close, execve");
	memory_is_shared();
	printf("atfork child handlers run in vfork children: %d\n", *atfork_children);
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	int status = wait_status(pid);
	printf("fork child exits %d; atfork child handlers run so far: %d\n", status,
	       *atfork_children);
	return 0;
}
