/* nh_clone_children.c: children made with clone() rather than fork(), as
 * runtimes and spawners make them: clone(CLONE_VM|CLONE_VFORK) (what
 * posix_spawn does) and a plain clone(). Each child ends with execve, _exit
 * or exit while its parent still serves a connection; the parent's next
 * write and what its peer reads must be as they were before the child ran:
 * the child's end releases nothing of its parent's. --close-pending: the
 * parent then closes with input unread (nh_child_conn.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
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

#define STACK_SIZE (256 * 1024)

static bool close_pending; /* nh_child_conn.h */

enum ending { END_EXECVE, END_UNDERSCORE_EXIT, END_EXIT };
static const char *ending_name[] = { "execve", "_exit", "exit" };

static int child_main(void *arg)
{
	enum ending how = *(enum ending *)arg;
	char *argv[] = { "true", NULL };

	if (how == END_EXECVE) {
		execve("/bin/true", argv, environ);
		_exit(127);
	}
	if (how == END_UNDERSCORE_EXIT)
		_exit(0);
	exit(0);
}

static void one(const char *kind, int flags, enum ending how)
{
	int client, s = accepted_with_request(&client), status;
	char *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

	if (stack == MAP_FAILED)
		exit(1);
	fflush(stdout); /* exit() in a CLONE_VM child flushes our buffers */
	pid_t pid = clone(child_main, stack + STACK_SIZE, flags | SIGCHLD, &how);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		exit(1);
	printf("%s child ending with %s: status %d\n", kind, ending_name[how],
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	reply_and_report(s, client);
	if (close_pending)
		close_with_input_unread(s, client);
	else
		close(s);
	close(client);
	munmap(stack, STACK_SIZE);
}

int main(int argc, char **argv)
{
	close_pending = argc > 1 && strcmp(argv[1], "--close-pending") == 0;
	signal(SIGPIPE, SIG_IGN);
	for (enum ending how = END_EXECVE; how <= END_EXIT; how++) {
		one("clone(CLONE_VM|CLONE_VFORK)", CLONE_VM | CLONE_VFORK, how);
		one("clone()", 0, how);
	}
	return 0;
}
