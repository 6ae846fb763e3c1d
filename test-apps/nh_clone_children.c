/* nh_clone_children.c: children made with clone() rather than fork(), as
 * runtimes and spawners make them: clone(CLONE_VM|CLONE_VFORK) (what
 * posix_spawn does) and a plain clone(). Each child ends with execve, _exit
 * or exit while its parent still serves a connection; the parent's next
 * write and what its peer reads must be as they were before the child ran:
 * the child's end releases nothing of its parent's. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define STACK_SIZE (256 * 1024)

/* An accepted connection (close-on-exec, as most runtimes make them) and
 * its client. */
static int accepted(int *client)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0)
		exit(1);
	*client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(*client, (struct sockaddr *)&a, sizeof a) < 0)
		exit(1);
	int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	return s;
}

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
	int client, s = accepted(&client), status;
	char *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

	/* A request the parent has not read yet: a close now would reset. */
	if (s < 0 || stack == MAP_FAILED || write(client, "request\n", 8) != 8)
		exit(1);
	fflush(stdout); /* exit() in a CLONE_VM child flushes our buffers */
	pid_t pid = clone(child_main, stack + STACK_SIZE, flags | SIGCHLD, &how);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		exit(1);
	printf("%s child ending with %s: status %d\n", kind, ending_name[how],
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	ssize_t w = write(s, "reply\n", 6);
	printf("  parent's next write: %s\n", w == 6 ? "ok" : strerrorname_np(errno));
	char buf[16];
	ssize_t r = read(client, buf, sizeof buf);
	printf("  peer reads: %s\n", r == 6 && memcmp(buf, "reply\n", 6) == 0 ? "the reply"
				       : r == 0 ? "end-of-file" : "something else");
	close(s);
	close(client);
	munmap(stack, STACK_SIZE);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	for (enum ending how = END_EXECVE; how <= END_EXIT; how++) {
		one("clone(CLONE_VM|CLONE_VFORK)", CLONE_VM | CLONE_VFORK, how);
		one("clone()", 0, how);
	}
	return 0;
}
