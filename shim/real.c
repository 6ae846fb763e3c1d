/* real.c: owns the pointers to the real libc functions. They start as raw
 * syscall stand-ins (never a faked success) and are replaced once by what
 * dlsym(RTLD_NEXT) finds, refusing a result that is the shim's own wrapper. */
#include "rawsys.h"
#include "real.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

static int raw_close(int fd) { return (int)raw_syscall(SYS_close, fd); }
static int raw_socket(int d, int t, int p) { return (int)raw_syscall(SYS_socket, d, t, p); }
static int raw_accept(int fd, struct sockaddr *a, socklen_t *l)
{
	return (int)raw_syscall(SYS_accept4, fd, a, l, 0);
}
static int raw_accept4(int fd, struct sockaddr *a, socklen_t *l, int f)
{
	return (int)raw_syscall(SYS_accept4, fd, a, l, f);
}
static int raw_dup(int fd) { return (int)raw_syscall(SYS_dup, fd); }
static int raw_dup2(int o, int n)
{
	/* dup3 refuses o == n, dup2 returns n when o is open. */
	if (o == n)
		return raw_syscall(SYS_fcntl, o, F_GETFD) < 0 ? -1 : n;
	return (int)raw_syscall(SYS_dup3, o, n, 0);
}
static int raw_dup3(int o, int n, int f) { return (int)raw_syscall(SYS_dup3, o, n, f); }
static int raw_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev)
{
	return (int)raw_syscall(SYS_epoll_ctl, ep, op, fd, ev);
}
static int raw_close_range(unsigned first, unsigned last, int flags)
{
	return (int)raw_syscall(SYS_close_range, first, last, flags);
}
/* Before glibc is bound: what glibc's closefrom does first. */
static void raw_closefrom(int lowfd)
{
	raw_syscall(SYS_close_range, lowfd > 0 ? lowfd : 0, ~0u, 0);
}
static int raw_unshare(int flags) { return (int)raw_syscall(SYS_unshare, flags); }
static int raw_setns(int fd, int type) { return (int)raw_syscall(SYS_setns, fd, type); }
static int raw_openat(int dir, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	long mode = va_arg(ap, long); /* read as glibc's syscall() reads it */
	va_end(ap);
	return (int)raw_syscall(SYS_openat, dir, path, flags, mode);
}
static int raw_open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	long mode = va_arg(ap, long);
	va_end(ap);
	return (int)raw_syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}
static int raw_open_2(const char *path, int flags) { return raw_open(path, flags, 0L); }
static int raw_openat_2(int dir, const char *path, int flags)
{
	return raw_openat(dir, path, flags, 0L);
}
static int raw_creat(const char *path, mode_t mode)
{
	return raw_open(path, O_CREAT | O_WRONLY | O_TRUNC, (long)mode);
}
static int raw_socketpair(int d, int t, int p, int sv[2])
{
	return (int)raw_syscall(SYS_socketpair, d, t, p, sv);
}
static int raw_pipe2(int p[2], int flags) { return (int)raw_syscall(SYS_pipe2, p, flags); }
static int raw_pipe(int p[2]) { return raw_pipe2(p, 0); }
static int raw_epoll_create1(int flags) { return (int)raw_syscall(SYS_epoll_create1, flags); }
static int raw_epoll_create(int size)
{
	if (size <= 0) {
		errno = EINVAL;
		return -1;
	}
	return raw_epoll_create1(0);
}
static int raw_inotify_init1(int flags) { return (int)raw_syscall(SYS_inotify_init1, flags); }
static int raw_inotify_init(void) { return raw_inotify_init1(0); }
static int raw_eventfd(unsigned v, int flags) { return (int)raw_syscall(SYS_eventfd2, v, flags); }
static int raw_timerfd_create(int clock, int flags)
{
	return (int)raw_syscall(SYS_timerfd_create, clock, flags);
}
static int raw_signalfd(int fd, const sigset_t *mask, int flags)
{
	return (int)raw_syscall(SYS_signalfd4, fd, mask, 8, flags); /* the kernel's sigset: 8 bytes */
}
static int raw_memfd_create(const char *name, unsigned flags)
{
	return (int)raw_syscall(SYS_memfd_create, name, flags);
}
static ssize_t raw_recvmsg(int fd, struct msghdr *m, int f)
{
	return raw_syscall(SYS_recvmsg, fd, m, f);
}
static ssize_t raw_sendmsg(int fd, const struct msghdr *m, int f)
{
	return raw_syscall(SYS_sendmsg, fd, m, f);
}
static long raw_syscall_variadic(long n, ...)
{
	long a[6];

	SYSCALL_VARARGS(n, a);
	return raw_syscall6(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
static int raw_shutdown(int fd, int how)
{
	return (int)raw_syscall(SYS_shutdown, fd, how);
}
static int raw_setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
	return (int)raw_syscall(SYS_setsockopt, fd, level, name, value, len);
}
static ssize_t raw_read(int fd, void *buf, size_t n)
{
	return raw_syscall(SYS_read, fd, buf, n);
}
static ssize_t raw_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a,
			    socklen_t *l)
{
	return raw_syscall(SYS_recvfrom, fd, buf, n, flags, a, l);
}
static ssize_t raw_recv(int fd, void *buf, size_t n, int flags)
{
	return raw_recvfrom(fd, buf, n, flags, NULL, NULL);
}
static ssize_t raw_readv(int fd, const struct iovec *iov, int n)
{
	return raw_syscall(SYS_readv, fd, iov, n);
}
static int raw_recvmmsg(int fd, struct mmsghdr *v, unsigned n, int f, struct timespec *t)
{
	return (int)raw_syscall(SYS_recvmmsg, fd, v, n, f, t);
}
/* The fortified twins' size check is the wrapper's; these only read. */
static ssize_t raw_read_chk(int fd, void *buf, size_t n, size_t size)
{
	(void)size;
	return raw_read(fd, buf, n);
}
static ssize_t raw_recv_chk(int fd, void *buf, size_t n, size_t size, int flags)
{
	(void)size;
	return raw_recv(fd, buf, n, flags);
}
static ssize_t raw_recvfrom_chk(int fd, void *buf, size_t n, size_t size, int flags,
				struct sockaddr *a, socklen_t *l)
{
	(void)size;
	return raw_recvfrom(fd, buf, n, flags, a, l);
}
static void raw_exit(int status)
{
	for (;;)
		raw_syscall(SYS_exit_group, status);
}
static int raw_execve(const char *path, char *const argv[], char *const envp[])
{
	return (int)raw_syscall(SYS_execve, path, argv, envp);
}
static int raw_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return (int)raw_syscall(SYS_fcntl, fd, cmd, arg);
}

struct real_fns real = {
	.close = raw_close,
	.socket = raw_socket,
	.accept = raw_accept,
	.accept4 = raw_accept4,
	.dup = raw_dup,
	.dup2 = raw_dup2,
	.dup3 = raw_dup3,
	.fcntl = raw_fcntl,
	.fcntl64 = raw_fcntl,
	.epoll_ctl = raw_epoll_ctl,
	.close_range = raw_close_range,
	.closefrom = raw_closefrom,
	.recvmsg = raw_recvmsg,
	.sendmsg = raw_sendmsg,
	.syscall = raw_syscall_variadic,
	.shutdown = raw_shutdown,
	.setsockopt = raw_setsockopt,
	.read = raw_read,
	.recv = raw_recv,
	.recvfrom = raw_recvfrom,
	.readv = raw_readv,
	.recvmmsg = raw_recvmmsg,
	.__read_chk = raw_read_chk,
	.__recv_chk = raw_recv_chk,
	.__recvfrom_chk = raw_recvfrom_chk,
	._exit = raw_exit,
	._Exit = raw_exit,
	.execve = raw_execve,
	.unshare = raw_unshare,
	.setns = raw_setns,
	.open = raw_open,
	.open64 = raw_open,
	.open_2 = raw_open_2,
	.open64_2 = raw_open_2,
	.openat = raw_openat,
	.openat64 = raw_openat,
	.openat_2 = raw_openat_2,
	.openat64_2 = raw_openat_2,
	.creat = raw_creat,
	.creat64 = raw_creat,
	.socketpair = raw_socketpair,
	.pipe = raw_pipe,
	.pipe2 = raw_pipe2,
	.epoll_create = raw_epoll_create,
	.epoll_create1 = raw_epoll_create1,
	.inotify_init1 = raw_inotify_init1,
	.inotify_init = raw_inotify_init,
	.eventfd = raw_eventfd,
	.timerfd_create = raw_timerfd_create,
	.signalfd = raw_signalfd,
	.memfd_create = raw_memfd_create,
};

/* True when fn lives in the shim's own object: dlsym(RTLD_NEXT) must never
 * hand back one of our wrappers (that would loop). */
static bool is_ours(void *fn)
{
	Dl_info fn_info, self_info;

	return dladdr(fn, &fn_info) && dladdr((void *)real_resolve, &self_info) &&
	       fn_info.dli_fbase == self_info.dli_fbase;
}

static void bind_next(void **slot, const char *name)
{
	void *next = dlsym(RTLD_NEXT, name);

	if (next && !is_ours(next))
		__atomic_store_n(slot, next, __ATOMIC_RELEASE);
}

static void resolve_once(void)
{
	bind_next((void **)&real.close, "close");
	bind_next((void **)&real.socket, "socket");
	bind_next((void **)&real.accept, "accept");
	bind_next((void **)&real.accept4, "accept4");
	bind_next((void **)&real.dup, "dup");
	bind_next((void **)&real.dup2, "dup2");
	bind_next((void **)&real.dup3, "dup3");
	bind_next((void **)&real.fcntl, "fcntl");
	bind_next((void **)&real.fcntl64, "fcntl64");
	bind_next((void **)&real.fork, "fork");
	bind_next((void **)&real.clone, "clone");
	bind_next((void **)&real.epoll_ctl, "epoll_ctl");
	bind_next((void **)&real.close_range, "close_range");
	bind_next((void **)&real.closefrom, "closefrom");
	bind_next((void **)&real.fclose, "fclose");
	bind_next((void **)&real.recvmsg, "recvmsg");
	bind_next((void **)&real.sendmsg, "sendmsg");
	bind_next((void **)&real.syscall, "syscall");
	bind_next((void **)&real.shutdown, "shutdown");
	bind_next((void **)&real.setsockopt, "setsockopt");
	bind_next((void **)&real.read, "read");
	bind_next((void **)&real.recv, "recv");
	bind_next((void **)&real.recvfrom, "recvfrom");
	bind_next((void **)&real.readv, "readv");
	bind_next((void **)&real.recvmmsg, "recvmmsg");
	bind_next((void **)&real.__read_chk, "__read_chk");
	bind_next((void **)&real.__recv_chk, "__recv_chk");
	bind_next((void **)&real.__recvfrom_chk, "__recvfrom_chk");
	bind_next((void **)&real._exit, "_exit");
	bind_next((void **)&real._Exit, "_Exit");
	bind_next((void **)&real.execve, "execve");
	bind_next((void **)&real.execvpe, "execvpe");
	bind_next((void **)&real.fexecve, "fexecve");
	bind_next((void **)&real.posix_spawn, "posix_spawn");
	bind_next((void **)&real.posix_spawnp, "posix_spawnp");
	bind_next((void **)&real.popen, "popen");
	bind_next((void **)&real.system, "system");
	bind_next((void **)&real.wordexp, "wordexp");
	bind_next((void **)&real.unshare, "unshare");
	bind_next((void **)&real.setns, "setns");
	bind_next((void **)&real.setuid, "setuid");
	bind_next((void **)&real.setgid, "setgid");
	bind_next((void **)&real.seteuid, "seteuid");
	bind_next((void **)&real.setegid, "setegid");
	bind_next((void **)&real.setreuid, "setreuid");
	bind_next((void **)&real.setregid, "setregid");
	bind_next((void **)&real.setresuid, "setresuid");
	bind_next((void **)&real.setresgid, "setresgid");
	bind_next((void **)&real.setgroups, "setgroups");
	bind_next((void **)&real.open, "open");
	bind_next((void **)&real.open64, "open64");
	bind_next((void **)&real.open_2, "__open_2");
	bind_next((void **)&real.open64_2, "__open64_2");
	bind_next((void **)&real.openat, "openat");
	bind_next((void **)&real.openat64, "openat64");
	bind_next((void **)&real.openat_2, "__openat_2");
	bind_next((void **)&real.openat64_2, "__openat64_2");
	bind_next((void **)&real.creat, "creat");
	bind_next((void **)&real.creat64, "creat64");
	bind_next((void **)&real.fopen, "fopen");
	bind_next((void **)&real.fopen64, "fopen64");
	bind_next((void **)&real.tmpfile, "tmpfile");
	bind_next((void **)&real.tmpfile64, "tmpfile64");
	bind_next((void **)&real.opendir, "opendir");
	bind_next((void **)&real.socketpair, "socketpair");
	bind_next((void **)&real.pipe, "pipe");
	bind_next((void **)&real.pipe2, "pipe2");
	bind_next((void **)&real.epoll_create, "epoll_create");
	bind_next((void **)&real.epoll_create1, "epoll_create1");
	bind_next((void **)&real.inotify_init1, "inotify_init1");
	bind_next((void **)&real.inotify_init, "inotify_init");
	bind_next((void **)&real.eventfd, "eventfd");
	bind_next((void **)&real.timerfd_create, "timerfd_create");
	bind_next((void **)&real.signalfd, "signalfd");
	bind_next((void **)&real.memfd_create, "memfd_create");
}

void real_resolve(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, resolve_once);
}
