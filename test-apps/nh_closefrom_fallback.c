/* nh_closefrom_fallback.c: closefrom() where close_range() is unavailable
 * (an older kernel, or a seccomp filter that refuses it, as container
 * runtimes' default profiles did). glibc then walks /proc/self/fd and closes
 * each descriptor itself. A seccomp filter here makes close_range fail with
 * ENOSYS; the program opens files, a pipe and a connection with unread
 * input, calls closefrom() and prints what is still open. Descriptors below
 * 64 only: the listing is about the program's own numbers. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tcp_pair.h"

static void refuse_close_range(void)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_close_range, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof code / sizeof *code, .filter = code };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		perror("seccomp");
		exit(1);
	}
}

static void list_open(const char *when, int from)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int mine = d ? dirfd(d) : -1;

	printf("%s, open from %d up:", when, from);
	while (d && (e = readdir(d))) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] != '.' && fd != mine && fd >= from && fd < 64)
			printf(" %d", fd);
	}
	printf("\n");
	if (d)
		closedir(d);
}

int main(void)
{
	int client, pipefd[2];

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	refuse_close_range();
	int s = tcp_pair(&client);
	int low = s;
	char buf[64];

	/* Refused: it must have let go of nothing. */
	errno = 0;
	int r = close_range((unsigned)low, ~0u, 0);
	printf("close_range: %d %s\n", r, r < 0 ? strerrorname_np(errno) : "ok");
	ssize_t w = write(s, "REPLY\n", 6);
	printf("write(s) after it: %zd %s\n", w, w < 0 ? strerrorname_np(errno) : "ok");
	printf("peer received: %s\n", pair_received(client, 300, buf, sizeof buf));
	if (pipe(pipefd) < 0 || open("/dev/null", O_RDONLY) < 0 || open("/dev/zero", O_RDONLY) < 0)
		return 1;
	if (socket(AF_INET, SOCK_STREAM, 0) < 0)
		return 1;
	list_open("before closefrom", low);
	closefrom(low);
	list_open("after closefrom", low);
	errno = 0;
	printf("client below it: %s\n", fcntl(client, F_GETFD) >= 0 ? "open" : strerrorname_np(errno));
	close(client);
	return 0;
}
