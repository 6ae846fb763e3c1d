/*
 * nh_exit_sandboxed.c -- a sandboxed program exits with a reply on its way.
 *
 * Sandboxes often forbid making processes: after a seccomp filter that
 * refuses clone() without CLONE_THREAD (EPERM) and clone3() (ENOSYS, so
 * that threads still start through clone()), the program can still start
 * threads but not fork. It then exits with a connection whose output the
 * peer has not taken yet. The peer, a process forked before the filter,
 * starts reading only then, and must still get every byte and the end of
 * the stream. One fact a line: what fork() says under the filter, what the
 * peer received.
 *
 * usage: nh_exit_sandboxed
 */
#define _GNU_SOURCE
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "common.h"

#define REPLY 65536

#if defined(__x86_64__)
#define THIS_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define THIS_ARCH AUDIT_ARCH_AARCH64
#else
#error "nh_exit_sandboxed: no seccomp arch for this machine"
#endif

static void usage(const char *msg)
{
	usage_exit("nh_exit_sandboxed", msg, "usage: nh_exit_sandboxed\n");
}

static void forbid_new_processes(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, THIS_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
	};
	struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
		die("seccomp");
}

/* The peer: connects, takes nothing until told to, then reads to the end. */
static void peer(struct sockaddr_in *a, int go)
{
	int small = 4096;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char buf[4096];
	size_t total = 0;
	ssize_t n;

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) < 0 ||
	    connect(fd, (struct sockaddr *)a, sizeof *a) < 0)
		die("connect");
	if (read(go, buf, 1) != 1)
		die("read");
	while ((n = read(fd, buf, sizeof buf)) > 0)
		total += (size_t)n;
	printf("peer received: %zu bytes, then %s\n", total,
	       n == 0 ? "end of stream" : errname(errno));
	exit(0);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int go[2], big = 1 << 20;
	static char reply[REPLY];

	(void)argv;
	if (argc != 1)
		usage("no arguments");
	setvbuf(stdout, NULL, _IONBF, 0);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0 || pipe(go) < 0)
		die("listen");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0)
		peer(&a, go[0]);
	int conn = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0 || setsockopt(conn, SOL_SOCKET, SO_SNDBUF, &big, sizeof big) < 0)
		die("accept");
	ssize_t sent = send(conn, reply, sizeof reply, MSG_DONTWAIT);
	printf("reply queued: %zd\n", sent);

	forbid_new_processes();
	pid_t refused = fork();
	if (refused == 0)
		_exit(0);
	printf("fork under the filter: %d %s\n", (int)refused, refused < 0 ? errname(errno) : "");
	if (write(go[1], "g", 1) != 1)
		die("write");
	exit(0); /* the reply is still on its way */
}
