/* creators.c: the exported wrappers of the calls that create descriptors
 * and nothing else of the shim's concern: each runs the real call through
 * WITH_ROOM (room.h), so a program at its RLIMIT_NOFILE gets every number it
 * would have had without the shim. (socket, accept, accept4, dup and fcntl
 * are in interpose.c, which also books what they return.) Calls that only
 * libc can make (fopen, opendir, tmpfile) bind the real function first. */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <unistd.h>

#include "real.h"
#include "room.h"
#include "shim.h"

/* glibc declares these only under _FORTIFY_SOURCE. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dir, const char *path, int flags);
int __openat64_2(int dir, const char *path, int flags);

/* open's mode, when the flags say there is one (as glibc reads it). */
#define OPEN_MODE(flags, mode)                                              \
	do {                                                                \
		if (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE) { \
			va_list ap_;                                        \
			va_start(ap_, flags);                               \
			(mode) = va_arg(ap_, mode_t);                       \
			va_end(ap_);                                        \
		}                                                           \
	} while (0)

SC_EXPORT int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	OPEN_MODE(flags, mode);
	return WITH_ROOM(1, real.open(path, flags, mode));
}

SC_EXPORT int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	OPEN_MODE(flags, mode);
	return WITH_ROOM(1, real.open64(path, flags, mode));
}

/* _FORTIFY_SOURCE's open without a mode. */
SC_EXPORT int __open_2(const char *path, int flags)
{
	return WITH_ROOM(1, real.open_2(path, flags));
}

SC_EXPORT int __open64_2(const char *path, int flags)
{
	return WITH_ROOM(1, real.open64_2(path, flags));
}

SC_EXPORT int openat(int dir, const char *path, int flags, ...)
{
	mode_t mode = 0;
	OPEN_MODE(flags, mode);
	return WITH_ROOM(1, real.openat(dir, path, flags, mode));
}

SC_EXPORT int openat64(int dir, const char *path, int flags, ...)
{
	mode_t mode = 0;
	OPEN_MODE(flags, mode);
	return WITH_ROOM(1, real.openat64(dir, path, flags, mode));
}

SC_EXPORT int __openat_2(int dir, const char *path, int flags)
{
	return WITH_ROOM(1, real.openat_2(dir, path, flags));
}

SC_EXPORT int __openat64_2(int dir, const char *path, int flags)
{
	return WITH_ROOM(1, real.openat64_2(dir, path, flags));
}

SC_EXPORT int creat(const char *path, mode_t mode)
{
	return WITH_ROOM(1, real.creat(path, mode));
}

SC_EXPORT int creat64(const char *path, mode_t mode)
{
	return WITH_ROOM(1, real.creat64(path, mode));
}

SC_EXPORT FILE *fopen(const char *path, const char *how)
{
	real_resolve();
	return WITH_ROOM_PTR(real.fopen(path, how));
}

SC_EXPORT FILE *fopen64(const char *path, const char *how)
{
	real_resolve();
	return WITH_ROOM_PTR(real.fopen64(path, how));
}

SC_EXPORT FILE *tmpfile(void)
{
	real_resolve();
	return WITH_ROOM_PTR(real.tmpfile());
}

SC_EXPORT FILE *tmpfile64(void)
{
	real_resolve();
	return WITH_ROOM_PTR(real.tmpfile64());
}

SC_EXPORT DIR *opendir(const char *path)
{
	real_resolve();
	return WITH_ROOM_PTR(real.opendir(path));
}

SC_EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
	return WITH_ROOM(2, real.socketpair(domain, type, protocol, sv));
}

SC_EXPORT int pipe(int p[2])
{
	return WITH_ROOM(2, real.pipe(p));
}

SC_EXPORT int pipe2(int p[2], int flags)
{
	return WITH_ROOM(2, real.pipe2(p, flags));
}

SC_EXPORT int epoll_create(int size)
{
	return WITH_ROOM(1, real.epoll_create(size));
}

SC_EXPORT int epoll_create1(int flags)
{
	return WITH_ROOM(1, real.epoll_create1(flags));
}

SC_EXPORT int inotify_init(void)
{
	return WITH_ROOM(1, real.inotify_init());
}

SC_EXPORT int inotify_init1(int flags)
{
	return WITH_ROOM(1, real.inotify_init1(flags));
}

SC_EXPORT int eventfd(unsigned value, int flags)
{
	return WITH_ROOM(1, real.eventfd(value, flags));
}

SC_EXPORT int timerfd_create(int clock, int flags)
{
	return WITH_ROOM(1, real.timerfd_create(clock, flags));
}

SC_EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	return WITH_ROOM(1, real.signalfd(fd, mask, flags));
}

SC_EXPORT int memfd_create(const char *name, unsigned flags)
{
	return WITH_ROOM(1, real.memfd_create(name, flags));
}
