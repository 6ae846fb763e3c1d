/* interpose.c: the library's entry points and nothing else: the constructor
 * and the exported wrappers of the libc functions that create, copy or drop a
 * descriptor. Each calls the real function and tells the ownership books or
 * the release path what happened; return value and errno are the real ones. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "epoll_books.h"
#include "ownership.h"
#include "probe.h"
#include "real.h"
#include "reaper.h"
#include "release.h"
#include "shim.h"

static const char *env_lookup(const char *name)
{
	return getenv(name);
}

__attribute__((constructor)) static void safeclose_init(void)
{
	struct sc_config cfg;

	real_resolve();
	sc_config_load(&cfg, env_lookup);
	sc_log_level = (int)cfg.log_level;
	sc_cfg = cfg;
	if (sc_cfg.mode != SC_MODE_OFF) {
		own_init();
		reaper_init();
	}
	SC_LOG(SC_LOG_INFO, "loaded: mode %s, linger %s, %ld ms at most, idle %ld ms",
	       sc_mode_name(sc_cfg.mode), sc_cfg.where == SC_LINGER_SYNC ? "sync" : "async",
	       sc_cfg.linger_ms, sc_cfg.idle_ms);
}

/* exit() and return from main must not cut the background lingers short. */
__attribute__((destructor)) static void safeclose_fini(void)
{
	reaper_wait_at_exit();
}

static int active(void)
{
	return sc_cfg.mode != SC_MODE_OFF;
}

SC_EXPORT int close(int fd)
{
	if (!active())
		return real.close(fd);
	if (reaper_owns(fd)) {
		errno = EBADF; /* the shim's own descriptor: not open, for the program */
		return -1;
	}
	release_before_close(fd);
	return real.close(fd);
}

/* A TCP socket the program now holds: on the books, and the background
 * thread started here, in a normal context, before any close needs it. */
static void track_tcp(int fd)
{
	own_track_socket(fd);
	reaper_start();
}

static int is_tcp_request(int domain, int type, int protocol)
{
	return (domain == AF_INET || domain == AF_INET6) &&
	       (type & 0xf) == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP);
}

SC_EXPORT int socket(int domain, int type, int protocol)
{
	int fd = real.socket(domain, type, protocol);

	if (fd >= 0 && active() && is_tcp_request(domain, type, protocol))
		track_tcp(fd);
	return fd;
}

/* A connection accepted from a TCP listener: the listener is on the books
 * when this process created it; otherwise ask the new socket. */
static void track_accepted(int listener, int fd)
{
	uint64_t cookie;

	if (fd >= 0 && active() && (own_lookup(listener, &cookie) || probe_is_tcp(fd)))
		track_tcp(fd);
}

SC_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	int conn = real.accept(fd, addr, len);

	track_accepted(fd, conn);
	return conn;
}

SC_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	int conn = real.accept4(fd, addr, len, flags);

	track_accepted(fd, conn);
	return conn;
}

SC_EXPORT int dup(int fd)
{
	int copy = real.dup(fd);

	if (copy >= 0)
		own_track_dup(fd, copy);
	return copy;
}

SC_EXPORT int dup2(int oldfd, int newfd)
{
	if (active())
		release_before_replace(oldfd, newfd);
	int fd = real.dup2(oldfd, newfd);
	if (fd >= 0)
		own_track_dup(oldfd, fd);
	return fd;
}

SC_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	if (active())
		release_before_replace(oldfd, newfd);
	int fd = real.dup3(oldfd, newfd, flags);
	if (fd >= 0)
		own_track_dup(oldfd, fd);
	return fd;
}

/* fcntl's third argument is an int or a pointer; glibc itself reads it as a
 * pointer, which carries either through unchanged. */
static int fcntl_common(fcntl_fn fn, int fd, int cmd, void *arg)
{
	int r = fn(fd, cmd, arg);

	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		own_track_dup(fd, r);
	return r;
}

SC_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(real.fcntl, fd, cmd, arg);
}

SC_EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(real.fcntl64, fd, cmd, arg);
}

SC_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
	int r = real.epoll_ctl(epfd, op, fd, event);

	if (r == 0 && active() && op == EPOLL_CTL_ADD)
		epb_added(epfd, fd);
	else if (r == 0 && active() && op == EPOLL_CTL_DEL)
		epb_deleted(epfd, fd);
	return r;
}

SC_EXPORT pid_t fork(void)
{
	real_resolve();
	if (!real.fork) {
		errno = ENOSYS; /* libc without fork: nothing to forward to */
		return -1;
	}
	own_fork_prepare();
	pid_t pid = real.fork();
	if (pid == 0)
		own_fork_child();
	else
		own_fork_parent(pid < 0);
	return pid;
}

/* A vfork child shares the parent's memory, so it could not keep books of
 * its own; POSIX allows vfork to be fork, and the child may only exec or
 * _exit either way. */
SC_EXPORT pid_t vfork(void)
{
	return fork();
}

SC_EXPORT int posix_spawn(pid_t *pid, const char *path,
			  const posix_spawn_file_actions_t *actions,
			  const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	real_resolve();
	own_hold_inherited();
	return real.posix_spawn(pid, path, actions, attr, argv, envp);
}

SC_EXPORT int posix_spawnp(pid_t *pid, const char *file,
			   const posix_spawn_file_actions_t *actions,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	real_resolve();
	own_hold_inherited();
	return real.posix_spawnp(pid, file, actions, attr, argv, envp);
}
