/* interpose.c: the library's entry points and nothing else: the constructor
 * and destructor, and the exported wrappers of the libc functions that
 * create, copy, pass or let go of a descriptor, shut or read a socket, fork,
 * exec or change credentials. Each calls the real function and tells the
 * ownership books or the release path what happened; return value and errno
 * are the real ones. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <grp.h>
#include <unistd.h>
#include <wordexp.h>

#include "config.h"
#include "conffile.h"
#include "log.h"
#include "epoll_books.h"
#include "heir.h"
#include "ownership.h"
#include "ports.h"
#include "probe.h"
#include "rawsys.h"
#include "real.h"
#include "reaper.h"
#include "room.h"
#include "selffd.h"
#include "spawned.h"
#include "self.h"
#include "readshut.h"
#include "release.h"
#include "shim.h"
#include "decide.h"
#include "statsfile.h"

__attribute__((constructor)) static void safeclose_init(void)
{
	struct sc_config cfg;

	sc_self_init();
	real_resolve();
	sc_settings_load(&cfg, environ);
	sc_log_level = (int)cfg.log_level;
	sc_cfg = cfg;
	if (sc_cfg.mode != SC_MODE_OFF) {
		own_init();
		if (sc_role_accepted() && own_adopt_inherited(sc_cfg.inherited == SC_INHERITED_OWN))
			decide_note_linger_possible(); /* options set where they came from */
		own_publish_books();
		reaper_init();
		readshut_init();
		if (!statsfile_init(sc_cfg.stats_path, sc_cfg.stats_interval_ms))
			sc_cfg.stats_path = NULL; /* nothing counts what no file shows */
	}
	SC_LOG(SC_LOG_INFO, "loaded: mode %s, linger %s, %ld ms at most, idle %ld ms, "
	       "A/B %ld%%, stats %s",
	       sc_mode_name(sc_cfg.mode), sc_cfg.where == SC_LINGER_SYNC ? "sync" : "async",
	       sc_cfg.linger_ms, sc_cfg.idle_ms, sc_may_linger() ? sc_cfg.ab_percent : 0,
	       sc_cfg.stats_path ? sc_cfg.stats_path : "none");
}

static int active(void)
{
	return sc_cfg.mode != SC_MODE_OFF;
}

/* Active, and in the process the shim follows (self.h): a child the shim
 * did not see being made acts on nothing, its calls go straight through.
 * One system call: for the paths that would act. */
static bool acting(void)
{
	return active() && sc_self();
}

/* exit() and return from main: what is still open lingers like a close,
 * and nothing lingering in the background is cut short. A CLONE_VM child
 * that calls exit() runs these destructors in its parent's memory. */
__attribute__((destructor)) static void safeclose_fini(void)
{
	if (acting())
		release_at_exit(true);
}

/* close(fd): a descriptor neither on the books nor one of the shim's own
 * leaves after one table lookup, without a system call; for the others, the
 * process must be the one the shim follows (one getpid). */
static int close_common(int fd)
{
	uint64_t booked;

	if (!active())
		return real.close(fd);
	bool shims = selffd_owns(fd);
	if (!shims && !own_lookup(fd, &booked)) {
		release_before_close(fd);
		return real.close(fd);
	}
	if (!sc_self())
		return real.close(fd);
	if (shims && !own_let_go_of_books((unsigned)fd, (unsigned)fd)) {
		errno = EBADF; /* the shim's own descriptor: not open, for the program */
		return -1;
	}
	release_known_before_close(fd);
	return real.close(fd);
}

/* close() is a cancellation point: with a cancellation pending, glibc's
 * ends the thread before it closes anything, so the shim acts on it first,
 * where nothing has been done yet (the release path itself has none). */
SC_EXPORT int close(int fd)
{
	if (active())
		pthread_testcancel();
	return close_common(fd);
}

/* A TCP socket the program now holds: on the books. */
static void track_tcp(int fd)
{
	if (!sc_self())
		return;
	own_track_socket(fd);
}

/* A connection the program was given (accepted, received): the shim's only
 * when its local port is in SAFECLOSE_PORTS; one outside is never on the
 * books, so every call on it goes straight through, as without the shim. */
static void track_served(int fd)
{
	if (sc_ports_admit(fd))
		track_tcp(fd);
}

static int is_tcp_request(int domain, int type, int protocol)
{
	return (domain == AF_INET || domain == AF_INET6) &&
	       (type & 0xf) == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP);
}

SC_EXPORT int socket(int domain, int type, int protocol)
{
	int fd = WITH_ROOM(1, real.socket(domain, type, protocol));

	if (fd >= 0 && active() && sc_role_connected() && is_tcp_request(domain, type, protocol))
		track_tcp(fd);
	if (active())
		reaper_safe_point();
	return fd;
}

/* A connection accepted from a TCP listener. The first accept asks the
 * new socket whether it is TCP, and a TCP listener then goes on the books
 * itself, so that every later accept from it knows without asking (a
 * listener never lingers: decide.c wants a connected state). */
static void track_accepted(int listener, int fd)
{
	uint64_t cookie;

	if (fd >= 0 && active() && sc_role_accepted()) {
		if (own_lookup(listener, &cookie)) {
			track_served(fd);
		} else if (probe_is_tcp(fd)) {
			track_tcp(listener);
			track_served(fd);
		}
	}
	if (active())
		reaper_safe_point();
}

SC_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	int conn = WITH_ROOM(1, real.accept(fd, addr, len));

	track_accepted(fd, conn);
	return conn;
}

SC_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	int conn = WITH_ROOM(1, real.accept4(fd, addr, len, flags));

	track_accepted(fd, conn);
	return conn;
}

SC_EXPORT int dup(int fd)
{
	int copy = WITH_ROOM(1, real.dup(fd));

	if (copy >= 0 && acting())
		own_track_dup(fd, copy);
	return copy;
}

/* dup2/dup3 onto a number the shim holds for itself: the program believes
 * it free (close() of it said EBADF), so the shim makes way (*yielded set).
 * True when the thread is held until reaper_replace_end(). */
static bool make_way(int newfd, bool *yielded)
{
	if (!selffd_owns(newfd))
		return false;
	*yielded = true;
	bool held = reaper_yield_number(newfd);
	readshut_yield_number(newfd);
	own_yield_number(newfd);
	heir_yield_number(newfd);
	selffd_unmark(newfd);
	return held;
}

/* dup2/dup3 over newfd. A call the kernel refuses before it looks at any
 * descriptor (fs/file.c: dup3 with flags other than O_CLOEXEC, or onto
 * itself) goes straight through: it must act on nothing. Every other one
 * is counted under way from before the shim acts to after the kernel has
 * answered, acting or not (reaper.c's `replaces`: a hand-off then knows
 * whether a number it just took could have been replaced). */
static int replace_fd(int oldfd, int newfd, int flags, bool is_dup3)
{
	bool held = false, yielded = false, act = acting();

	if (is_dup3 && ((flags & ~O_CLOEXEC) || oldfd == newfd))
		return real.dup3(oldfd, newfd, flags);
	reaper_replace_begin();
	if (act) {
		release_before_replace(oldfd, newfd);
		held = make_way(newfd, &yielded);
	}
	int fd = is_dup3 ? real.dup3(oldfd, newfd, flags) : real.dup2(oldfd, newfd);
	reaper_replace_end(yielded, held);
	if (fd >= 0 && act)
		own_track_dup(oldfd, fd);
	return fd;
}

SC_EXPORT int dup2(int oldfd, int newfd)
{
	return replace_fd(oldfd, newfd, 0, false);
}

SC_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	return replace_fd(oldfd, newfd, flags, true);
}

/* fcntl's third argument is an int or a pointer; glibc itself reads it as a
 * pointer, which carries either through unchanged. */
static int fcntl_common(fcntl_fn fn, int fd, int cmd, void *arg)
{
	bool dups = cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC;
	int r = dups ? WITH_ROOM(1, fn(fd, cmd, arg)) : fn(fd, cmd, arg);

	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && acting())
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
	uint64_t booked;

	if (r != 0 || (op != EPOLL_CTL_ADD && op != EPOLL_CTL_DEL) || !active())
		return r;
	/* Only a socket on the books is ever kept alive, and a descriptor
	 * gets on the books before any registration can name it: the others
	 * cost no system call here. */
	if (own_lookup(fd, &booked) && sc_self()) {
		if (op == EPOLL_CTL_ADD)
			epb_added(epfd, fd);
		else
			epb_deleted(epfd, fd);
	}
	reaper_safe_point();
	return r;
}

SC_EXPORT pid_t fork(void)
{
	real_resolve();
	if (!real.fork) {
		errno = ENOSYS; /* libc without fork: nothing to forward to */
		return -1;
	}
	if (!acting())
		return real.fork();
	/* Signals wait until the books agree with the kernel again: a handler's
	 * close between prepare (which counted the child's references) and the
	 * fork syscall would take a reference the child never gets, and one
	 * after it could not tell (test-apps/sigstorm.c, the fork way). The
	 * signal is delivered when fork() returns, as if it came a little later;
	 * the faults a fork itself could raise are left unblocked. */
	sigset_t all, saved;
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGFPE);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	own_fork_prepare();
	sc_self_fork_begin();
	pid_t pid = real.fork();
	int saved_errno = errno;
	sc_self_fork_end(pid == 0);
	if (pid == 0) {
		own_fork_child();
		heir_after_fork_child();
	} else
		own_fork_parent(pid);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	errno = saved_errno;
	return pid;
}

/* vfork keeps its semantics (shared memory, no atfork handlers, the parent
 * suspended until exec or _exit): vfork.c makes the system call itself and
 * only tells self.c that a child shares the memory. The child is a process
 * the shim does not follow (self.h), in which every wrapper goes straight
 * through. clone() with CLONE_VM does the same, for the child's lifetime. */
SC_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	va_list ap;

	va_start(ap, arg);
	pid_t *parent_tid = va_arg(ap, pid_t *);
	void *tls = va_arg(ap, void *);
	pid_t *child_tid = va_arg(ap, pid_t *);
	va_end(ap);
	real_resolve();
	if (!real.clone) {
		errno = ENOSYS;
		return -1;
	}
	if (flags & CLONE_VM)
		sc_self_memory_shared();
	int pid = real.clone(fn, stack, flags, arg, parent_tid, tls, child_tid);
	if ((flags & CLONE_VM) && ((flags & CLONE_VFORK) || pid < 0)) {
		int saved_errno = errno;
		sc_self_memory_shared_end();
		errno = saved_errno;
	}
	return pid;
}

/* A raw clone, clone3 or vfork through syscall(): a child that shares the
 * memory may return here (and live on) however it was asked for. */
static bool raw_child_may_share_memory(long number, const long *a)
{
	switch (number) {
	case SYS_clone:
		return (a[0] & CLONE_VM) != 0;
#ifdef SYS_clone3
	case SYS_clone3: /* its flags are behind a pointer the kernel checks: assumed */
		return true;
#endif
#ifdef SYS_vfork
	case SYS_vfork:
		return true;
#endif
	default:
		return false;
	}
}

/* The environment an exec'd or spawned program gets: the one it was given,
 * plus, when that loads the shim again, the family's books and the mark that
 * our references were counted for it (own_exec_env). On the stack. */
#define NEW_PROGRAM_ENV(envp, name, held)                               \
	size_t envc_ = 0;                                               \
	while ((envp) && (envp)[envc_])                                 \
		envc_++;                                                \
	char *name[envc_ + 3];                                          \
	char env_bufs_[2][SC_ENV_ROOM];                                 \
	own_exec_env((envp), name, envc_ + 3, env_bufs_, (held).ticket, (held).pid)

/* The spawned program holds what it inherits and what its file actions dup
 * into it (spawned.h): counted under a ticket, put under its pid once the
 * spawn returns it (asked for even when the program passed no pid). */
static int spawn_common(spawn_fn spawn, pid_t *pid, const char *path,
			const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attr,
			char *const argv[], char *const envp[])
{
	struct spawn_holds held;
	pid_t child = 0;

	spawn_hold_for_actions(actions, own_spawn_ticket(), &held);
	NEW_PROGRAM_ENV(envp, env, held);
	int r = spawn(&child, path, actions, attr, argv, env);
	own_exec_env_done();
	if (r != 0) {
		spawn_holds_undo(&held); /* no program started */
		return r;
	}
	spawn_holds_started(&held, child);
	if (pid)
		*pid = child;
	return r;
}

SC_EXPORT int posix_spawn(pid_t *pid, const char *path,
			  const posix_spawn_file_actions_t *actions,
			  const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	real_resolve();
	if (!acting())
		return real.posix_spawn(pid, path, actions, attr, argv, envp);
	return spawn_common(real.posix_spawn, pid, path, actions, attr, argv, envp);
}

SC_EXPORT int posix_spawnp(pid_t *pid, const char *file,
			   const posix_spawn_file_actions_t *actions,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	real_resolve();
	if (!acting())
		return real.posix_spawnp(pid, file, actions, attr, argv, envp);
	return spawn_common(real.posix_spawnp, pid, file, actions, attr, argv, envp);
}

/* glibc's popen(), system() and wordexp()'s command substitution call
 * posix_spawn by an internal alias, out of the wrapper's reach: their shell
 * inherits every socket that is not close-on-exec (popen's file actions only
 * place and close pipes). Given back only when no shell was started. */
static void hold_for_shell(struct spawn_holds *held)
{
	real_resolve();
	held->n = 0;
	if (acting())
		spawn_hold_for_actions(NULL, 0, held); /* the shell's pid stays glibc's */
}

SC_EXPORT FILE *popen(const char *command, const char *type)
{
	struct spawn_holds held;

	hold_for_shell(&held);
	FILE *f = real.popen ? real.popen(command, type) : NULL;
	if (!f)
		spawn_holds_undo(&held);
	if (!real.popen)
		errno = ENOSYS;
	return f;
}

SC_EXPORT int system(const char *command)
{
	struct spawn_holds held;

	hold_for_shell(&held);
	int r = real.system ? real.system(command) : -1;
	if (r == -1)
		spawn_holds_undo(&held);
	if (!real.system)
		errno = ENOSYS;
	return r;
}

SC_EXPORT int wordexp(const char *words, wordexp_t *result, int flags)
{
	struct spawn_holds held = { .n = 0 };

	if (!(flags & WRDE_NOCMD))
		hold_for_shell(&held);
	if (!real.wordexp)
		return WRDE_NOSPACE;
	return real.wordexp(words, result, flags);
}

/* close_range() that the kernel refuses outright (unknown flags, first above
 * last) or that only marks close-on-exec goes straight through: it lets go
 * of nothing, so nothing may be released. */
static bool close_range_releases(unsigned first, unsigned last, int flags)
{
	return !(flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)) &&
	       !(flags & CLOSE_RANGE_CLOEXEC) && first <= last;
}

/* close_range() is there (an older kernel or a seccomp filter may refuse
 * it): one empty range, so nothing is released for a call that fails. */
static bool close_range_works(void)
{
	int saved_errno = errno;
	bool works = real.close_range(~0u, ~0u, 0) == 0;

	errno = saved_errno;
	return works;
}

SC_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	if (!acting() || !close_range_releases(first, last, flags) || !close_range_works())
		return real.close_range(first, last, flags);
	own_let_go_of_books(first, last); /* "close all": the books go too */
	release_range(first, last);
	return selffd_close_range_around(first, last, flags);
}

/* glibc's closefrom: close_range, or where that is refused, a walk of
 * /proc/self/fd (ours goes around the shim's descriptors); when neither can
 * be done, glibc's own decides (it ends the program, as without the shim). */
SC_EXPORT void closefrom(int lowfd)
{
	int from = lowfd > 0 ? lowfd : 0;

	real_resolve();
	if (!active()) {
		real.closefrom(lowfd);
		return;
	}
	int saved_errno = errno;
	if (close_range((unsigned)from, ~0u, 0) < 0 && !release_close_from(from))
		real.closefrom(from);
	errno = saved_errno;
}

/* unshare(CLONE_NEWUSER) and setns() into a user or mount namespace want
 * the caller alone in its process, and fail with EINVAL beside the shim's
 * thread: when the thread runs, it is paused for one retry and resumed. The
 * retry's result is the call's (EINVAL again when the program has threads
 * of its own). */
static int retried_alone(int r, bool is_setns, int a, int b)
{
	if (r == 0 || errno != EINVAL || !acting() || !reaper_pause())
		return r;
	r = is_setns ? real.setns(a, b) : real.unshare(a);
	int saved_errno = errno;
	reaper_resume();
	errno = saved_errno;
	return r;
}

SC_EXPORT int unshare(int flags)
{
	return retried_alone(real.unshare(flags), false, flags, 0);
}

SC_EXPORT int setns(int fd, int nstype)
{
	return retried_alone(real.setns(fd, nstype), true, fd, nstype);
}

/* A change of credentials (a worker dropping to nobody before it serves,
 * as privilege-separated servers do): once they differ from those of the
 * books' maker, the process leaves the family's books before the program
 * runs another instruction (own_detach), so that code compromised later
 * cannot write them. Out of reach: the raw system call made without libc's
 * syscall() (inline assembly, or a static binary), and capability changes
 * alone (capset, prctl), which leave the ids as they were. */
static int after_credentials(int r)
{
	int saved_errno = errno;

	if (r == 0 && active() && own_must_detach())
		own_detach();
	errno = saved_errno;
	return r;
}

#define CREDENTIAL_CALL(name, ...)          \
	do {                                \
		real_resolve();             \
		if (!real.name) {           \
			errno = ENOSYS;     \
			return -1;          \
		}                           \
		return after_credentials(real.name(__VA_ARGS__)); \
	} while (0)

SC_EXPORT int setuid(uid_t uid) { CREDENTIAL_CALL(setuid, uid); }
SC_EXPORT int setgid(gid_t gid) { CREDENTIAL_CALL(setgid, gid); }
SC_EXPORT int seteuid(uid_t uid) { CREDENTIAL_CALL(seteuid, uid); }
SC_EXPORT int setegid(gid_t gid) { CREDENTIAL_CALL(setegid, gid); }
SC_EXPORT int setreuid(uid_t r, uid_t e) { CREDENTIAL_CALL(setreuid, r, e); }
SC_EXPORT int setregid(gid_t r, gid_t e) { CREDENTIAL_CALL(setregid, r, e); }
SC_EXPORT int setresuid(uid_t r, uid_t e, uid_t s) { CREDENTIAL_CALL(setresuid, r, e, s); }
SC_EXPORT int setresgid(gid_t r, gid_t e, gid_t s) { CREDENTIAL_CALL(setresgid, r, e, s); }
/* The books' owner is its ids, not its groups: setgroups alone leaves it
 * the owner (a process with CAP_SETGID and the owner's ids), but it is
 * where a drop of privileges starts, and costs one comparison. */
SC_EXPORT int setgroups(size_t n, const gid_t *groups) { CREDENTIAL_CALL(setgroups, n, groups); }

/* glibc closes an fdopen()ed socket inside fclose, out of reach of close():
 * flush what the stream buffers first, so the FIN follows it. */
SC_EXPORT int fclose(FILE *stream)
{
	real_resolve();
	int fd = stream && active() ? fileno(stream) : -1;
	uint64_t cookie;

	if (fd >= 0 && own_lookup(fd, &cookie) && sc_self()) {
		int saved_errno = errno;
		fflush(stream);
		errno = saved_errno;
		release_before_close(fd);
	}
	if (active())
		reaper_safe_point(); /* stdio: never in a signal handler */
	return real.fclose(stream);
}

/* Descriptors passed in SCM_RIGHTS messages, each given to fn. */
static void each_passed_fd(const struct msghdr *msg, void (*fn)(int))
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
			fn(fd);
		}
	}
}

static void track_if_tcp(int fd)
{
	if (probe_is_tcp(fd)) {
		decide_note_linger_possible(); /* the sender may have set it */
		track_served(fd);
	}
}

SC_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t got;

	if (active() && readshut_recvmsg(fd, msg, flags, &got))
		return got;
	ssize_t n = real.recvmsg(fd, msg, flags);

	if (n >= 0 && active() && sc_role_accepted() && msg && msg->msg_controllen) {
		int saved_errno = errno;
		each_passed_fd(msg, track_if_tcp);
		errno = saved_errno;
	}
	return n;
}

/* SO_LINGER with l_onoff changes how a close ends (decide.c): once the
 * program sets it on any socket, every close asks the kernel. */
SC_EXPORT int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
	int r = real.setsockopt(fd, level, name, value, len);

	if (r == 0 && level == SOL_SOCKET && name == SO_LINGER)
		decide_note_linger_possible();
	return r;
}

SC_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t n = real.sendmsg(fd, msg, flags);

	if (n >= 0 && active() && msg && msg->msg_controllen)
		each_passed_fd(msg, own_give_away);
	return n;
}

/* libuv (so Node.js) closes with syscall(SYS_close, fd): the numbers that
 * let go of or copy a descriptor take the same paths as their functions. */
SC_EXPORT long syscall(long number, ...)
{
	long a[6];

	SYSCALL_VARARGS(number, a);
	if (raw_child_may_share_memory(number, a))
		sc_self_memory_shared(); /* for good: this caller cannot be followed out */
	switch (active() ? number : -1) {
	case SYS_close:
		return close_common((int)a[0]); /* syscall() is no cancellation point */
	case SYS_close_range:
		return close_range((unsigned)a[0], (unsigned)a[1], (int)a[2]);
#ifdef SYS_dup2
	case SYS_dup2:
		return dup2((int)a[0], (int)a[1]);
#endif
	case SYS_dup3:
		return dup3((int)a[0], (int)a[1], (int)a[2]);
	case SYS_epoll_ctl:
		return epoll_ctl((int)a[0], (int)a[1], (int)a[2], (struct epoll_event *)a[3]);
	case SYS_shutdown:
		return shutdown((int)a[0], (int)a[1]);
	case SYS_setsockopt:
		return setsockopt((int)a[0], (int)a[1], (int)a[2], (const void *)a[3],
				  (socklen_t)a[4]);
	case SYS_unshare:
		return unshare((int)a[0]);
	case SYS_setns:
		return setns((int)a[0], (int)a[1]);
	/* The raw call changes only this thread's credentials, as asked: made
	 * as asked, the books left after it all the same. */
	case SYS_setuid:
	case SYS_setgid:
	case SYS_setreuid:
	case SYS_setregid:
	case SYS_setresuid:
	case SYS_setresgid:
	case SYS_setgroups:
		return after_credentials((int)real.syscall(number, a[0], a[1], a[2]));
	default:
		return real.syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
	}
}

/* _exit() ends a process without destructors, often from a signal handler
 * or in a forked child that still holds its connection: linger what it
 * holds, async-signal-safely, then go. */
SC_EXPORT __attribute__((noreturn)) void _exit(int status)
{
	if (acting())
		release_at_exit(false);
	real_resolve();
	real._exit(status);
	for (;;)
		raw_syscall(SYS_exit_group, status);
}

SC_EXPORT __attribute__((noreturn)) void _Exit(int status)
{
	_exit(status);
}

/* execve() drops the close-on-exec descriptors (and the shim's thread):
 * what lingers then is up to a heir, which acts only if the exec succeeds
 * (its ticket is returned). In a child the shim does not follow (vfork,
 * clone), nothing of the parent's is released: the sockets the child's
 * descriptors refer to are marked held by the new program instead. */
static int before_exec(struct spawn_holds *held, char *const envp[])
{
	held->n = 0;
	held->ticket = 0;
	held->pid = 0;
	if (sc_self())
		return release_before_exec();
	spawn_hold_open_sockets(held, envp);
	return -1;
}

/* The exec failed: nothing was handed to a new program, and the heir goes. */
static void exec_failed(struct spawn_holds *held, int ticket)
{
	int saved_errno = errno;

	release_after_failed_exec(ticket);
	own_exec_env_done();
	spawn_holds_undo(held);
	errno = saved_errno;
}

SC_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	real_resolve();
	if (!active())
		return real.execve(path, argv, envp);
	struct spawn_holds held;
	int ticket = before_exec(&held, envp);
	NEW_PROGRAM_ENV(envp, env, held);
	int r = real.execve(path, argv, env);
	exec_failed(&held, ticket);
	return r;
}

SC_EXPORT int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

SC_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	real_resolve();
	if (!active())
		return real.execvpe(file, argv, envp);
	struct spawn_holds held;
	int ticket = before_exec(&held, envp);
	NEW_PROGRAM_ENV(envp, env, held);
	int r = real.execvpe(file, argv, env);
	exec_failed(&held, ticket);
	return r;
}

SC_EXPORT int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

SC_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	real_resolve();
	if (!active())
		return real.fexecve(fd, argv, envp);
	struct spawn_holds held;
	int ticket = before_exec(&held, envp);
	NEW_PROGRAM_ENV(envp, env, held);
	int r = real.fexecve(fd, argv, env);
	exec_failed(&held, ticket);
	return r;
}

/* execl, execlp, execle: their arguments as an argv array on the stack. */
#define COLLECT_ARGS(first, ap, argv)                                  \
	size_t argc_ = 1;                                              \
	va_start(ap, first);                                           \
	while (va_arg(ap, char *))                                     \
		argc_++;                                               \
	va_end(ap);                                                    \
	char *argv[argc_ + 1];                                         \
	va_start(ap, first);                                           \
	argv[0] = (char *)(first);                                     \
	for (size_t i_ = 1; i_ <= argc_; i_++)                         \
		argv[i_] = va_arg(ap, char *);

SC_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	COLLECT_ARGS(arg, ap, argv)
	va_end(ap);
	return execve(path, argv, environ);
}

SC_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	COLLECT_ARGS(arg, ap, argv)
	va_end(ap);
	return execvpe(file, argv, environ);
}

SC_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	COLLECT_ARGS(arg, ap, argv)
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	return execve(path, argv, envp);
}

/* The advice "shutdown(SHUT_RDWR) before close()" is a reset trigger of its
 * own: see readshut.h. */
SC_EXPORT int shutdown(int fd, int how)
{
	uint64_t cookie;

	if (!active() || how == SHUT_WR || !own_lookup(fd, &cookie) || !sc_self() ||
	    !decide_acts_on(sc_cfg.mode, fd))
		return real.shutdown(fd, how);
	return readshut_shutdown(fd, cookie, how);
}

/* After the program's shutdown(SHUT_RD), its reads see what the kernel
 * would show them, while the shim keeps the read side open: readshut.c. */
SC_EXPORT ssize_t read(int fd, void *buf, size_t count)
{
	ssize_t n;

	if (active() && readshut_recvfrom(fd, buf, count, 0, NULL, NULL, &n))
		return n;
	return real.read(fd, buf, count);
}

SC_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	ssize_t n;

	if (active() && readshut_readv(fd, iov, iovcnt, &n))
		return n;
	return real.readv(fd, iov, iovcnt);
}

SC_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	ssize_t n;

	if (active() && readshut_recvfrom(fd, buf, len, flags, NULL, NULL, &n))
		return n;
	return real.recv(fd, buf, len, flags);
}

SC_EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
			   socklen_t *addrlen)
{
	ssize_t n;

	if (active() && readshut_recvfrom(fd, buf, len, flags, addr, addrlen, &n))
		return n;
	return real.recvfrom(fd, buf, len, flags, addr, addrlen);
}

SC_EXPORT int recvmmsg(int fd, struct mmsghdr *msgs, unsigned vlen, int flags,
		       struct timespec *timeout)
{
	int n;

	if (active() && readshut_recvmmsg(fd, msgs, vlen, flags, &n))
		return n;
	return real.recvmmsg(fd, msgs, vlen, flags, timeout);
}

/* The fortified twins (_FORTIFY_SOURCE, all of Debian): the same, after
 * glibc's own check of the buffer's size. */
extern void __chk_fail(void) __attribute__((noreturn));
ssize_t __read_chk(int fd, void *buf, size_t count, size_t size);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t size, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t size, int flags,
		       struct sockaddr *addr, socklen_t *addrlen);

SC_EXPORT ssize_t __read_chk(int fd, void *buf, size_t count, size_t size)
{
	ssize_t n;

	if (count > size)
		__chk_fail();
	if (active() && readshut_recvfrom(fd, buf, count, 0, NULL, NULL, &n))
		return n;
	return real.__read_chk(fd, buf, count, size);
}

SC_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len, size_t size, int flags)
{
	ssize_t n;

	if (len > size)
		__chk_fail();
	if (active() && readshut_recvfrom(fd, buf, len, flags, NULL, NULL, &n))
		return n;
	return real.__recv_chk(fd, buf, len, size, flags);
}

SC_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t size, int flags,
				 struct sockaddr *addr, socklen_t *addrlen)
{
	ssize_t n;

	if (len > size)
		__chk_fail();
	if (active() && readshut_recvfrom(fd, buf, len, flags, addr, addrlen, &n))
		return n;
	return real.__recvfrom_chk(fd, buf, len, size, flags, addr, addrlen);
}
