/* real.h: the libc functions the shim wraps, resolved once. */
#ifndef SAFECLOSE_REAL_H
#define SAFECLOSE_REAL_H

#include <spawn.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

typedef int (*close_fn)(int);
typedef int (*socket_fn)(int, int, int);
typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);
typedef int (*dup_fn)(int);
typedef int (*dup2_fn)(int, int);
typedef int (*dup3_fn)(int, int, int);
typedef int (*fcntl_fn)(int, int, ...);
typedef pid_t (*fork_fn)(void);
typedef int (*epoll_ctl_fn)(int, int, int, struct epoll_event *);
typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			const posix_spawnattr_t *, char *const[], char *const[]);

struct real_fns {
	close_fn close;
	socket_fn socket;
	accept_fn accept;
	accept4_fn accept4;
	dup_fn dup;
	dup2_fn dup2;
	dup3_fn dup3;
	fcntl_fn fcntl;
	fcntl_fn fcntl64;
	fork_fn fork;
	epoll_ctl_fn epoll_ctl;
	spawn_fn posix_spawn;
	spawn_fn posix_spawnp;
};

/* Until real_resolve() has run, every entry is a raw-syscall stand-in, so a
 * call that comes before the constructor (or during dlsym) still works. */
extern struct real_fns real;

/* Binds every entry with dlsym(RTLD_NEXT); safe to call more than once and
 * from several threads. fork and posix_spawn have no raw stand-in, so their
 * wrappers call this first. */
void real_resolve(void);

#endif
