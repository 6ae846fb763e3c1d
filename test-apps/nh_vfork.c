/* nh_vfork.c: vfork keeps its semantics. The child shares its parent's
 * memory (shells and spawners pass an exec errno back that way), runs no
 * atfork handler, and its exec or _exit releases nothing of the parent's
 * connections. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Counted where any process of ours can add: a shared page. */
static int *atfork_children;

static void count_atfork_child(void)
{
	__atomic_add_fetch(atfork_children, 1, __ATOMIC_SEQ_CST);
}

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
	/* A request the parent has not read yet: a close now would reset. */
	if (s < 0 || write(*client, "request\n", 8) != 8)
		exit(1);
	return s;
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

static void connection_survives(const char *ending)
{
	int client, s = accepted(&client);
	char *argv[] = { "true", NULL };

	pid_t pid = vfork();
	if (pid == 0) {
		if (strcmp(ending, "execve") == 0)
			execve("/bin/true", argv, environ);
		_exit(0);
	}
	printf("vfork child ending with %s exits %d\n", ending, wait_status(pid));
	ssize_t w = write(s, "reply\n", 6);
	printf("  parent's next write: %s\n", w == 6 ? "ok" : strerrorname_np(errno));
	char buf[16];
	ssize_t r = read(client, buf, sizeof buf);
	printf("  peer reads: %s\n", r == 6 && memcmp(buf, "reply\n", 6) == 0 ? "the reply"
				       : r == 0 ? "end-of-file" : "something else");
	close(s);
	close(client);
}

int main(void)
{
	atfork_children = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			       -1, 0);
	if (atfork_children == MAP_FAILED)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	pthread_atfork(NULL, NULL, count_atfork_child);
	fflush(stdout);
	memory_is_shared();
	connection_survives("_exit");
	connection_survives("execve");
	printf("atfork child handlers run in vfork children: %d\n", *atfork_children);
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	int status = wait_status(pid);
	printf("fork child exits %d; atfork child handlers run so far: %d\n", status,
	       *atfork_children);
	return 0;
}
