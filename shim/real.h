/* real.h: the libc functions the shim wraps, resolved once. */
#ifndef SAFECLOSE_REAL_H
#define SAFECLOSE_REAL_H

#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <wordexp.h>

typedef int (*close_fn)(int);
typedef int (*socket_fn)(int, int, int);
typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);
typedef int (*dup_fn)(int);
typedef int (*dup2_fn)(int, int);
typedef int (*dup3_fn)(int, int, int);
typedef int (*fcntl_fn)(int, int, ...);
typedef pid_t (*fork_fn)(void);
typedef int (*clone_fn)(int (*)(void *), void *, int, void *, ...);
typedef int (*epoll_ctl_fn)(int, int, int, struct epoll_event *);
typedef int (*close_range_fn)(unsigned, unsigned, int);
typedef void (*closefrom_fn)(int);
typedef int (*unshare_fn)(int);
typedef int (*open_fn)(const char *, int, ...);
typedef int (*open2_fn)(const char *, int);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*openat2_fn)(int, const char *, int);
typedef int (*creat_fn)(const char *, mode_t);
typedef FILE *(*fopen_fn)(const char *, const char *);
typedef FILE *(*tmpfile_fn)(void);
typedef DIR *(*opendir_fn)(const char *);
typedef int (*socketpair_fn)(int, int, int, int[2]);
typedef int (*pipe_fn)(int[2]);
typedef int (*pipe2_fn)(int[2], int);
typedef int (*int_arg_fn)(int);
typedef int (*no_arg_fn)(void);
typedef int (*eventfd_fn)(unsigned, int);
typedef int (*two_int_fn)(int, int);
typedef int (*signalfd_fn)(int, const sigset_t *, int);
typedef int (*memfd_fn)(const char *, unsigned);
typedef int (*setns_fn)(int, int);
typedef int (*fclose_fn)(FILE *);
typedef ssize_t (*msg_fn)(int, struct msghdr *, int);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);
typedef long (*syscall_fn)(long, ...);
typedef int (*shutdown_fn)(int, int);
typedef int (*setsockopt_fn)(int, int, int, const void *, socklen_t);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef ssize_t (*recvfrom_fn)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
typedef ssize_t (*readv_fn)(int, const struct iovec *, int);
typedef int (*recvmmsg_fn)(int, struct mmsghdr *, unsigned, int, struct timespec *);
typedef ssize_t (*read_chk_fn)(int, void *, size_t, size_t);
typedef ssize_t (*recv_chk_fn)(int, void *, size_t, size_t, int);
typedef ssize_t (*recvfrom_chk_fn)(int, void *, size_t, size_t, int, struct sockaddr *,
				   socklen_t *);
typedef void (*exit_fn)(int);
typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execvpe_fn)(const char *, char *const[], char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);
typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			const posix_spawnattr_t *, char *const[], char *const[]);
typedef FILE *(*popen_fn)(const char *, const char *);
typedef int (*system_fn)(const char *);
typedef int (*wordexp_fn)(const char *, wordexp_t *, int);
typedef int (*setid_fn)(unsigned);
typedef int (*setreid_fn)(unsigned, unsigned);
typedef int (*setresid_fn)(unsigned, unsigned, unsigned);
typedef int (*setgroups_fn)(size_t, const gid_t *);

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
	clone_fn clone;
	epoll_ctl_fn epoll_ctl;
	close_range_fn close_range;
	closefrom_fn closefrom;
	fclose_fn fclose;
	msg_fn recvmsg;
	sendmsg_fn sendmsg;
	syscall_fn syscall;
	shutdown_fn shutdown;
	setsockopt_fn setsockopt;
	read_fn read;
	recv_fn recv;
	recvfrom_fn recvfrom;
	readv_fn readv;
	recvmmsg_fn recvmmsg;
	read_chk_fn __read_chk;
	recv_chk_fn __recv_chk;
	recvfrom_chk_fn __recvfrom_chk;
	exit_fn _exit;
	exit_fn _Exit;
	execve_fn execve;
	execvpe_fn execvpe;
	fexecve_fn fexecve;
	spawn_fn posix_spawn;
	spawn_fn posix_spawnp;
	popen_fn popen;
	system_fn system;
	wordexp_fn wordexp;
	unshare_fn unshare;
	setns_fn setns;
	/* credentials (no raw stand-in: glibc's change every thread's) */
	setid_fn setuid, setgid, seteuid, setegid;
	setreid_fn setreuid, setregid;
	setresid_fn setresuid, setresgid;
	setgroups_fn setgroups;
	/* descriptor creators (room.h): retried when the shim made room */
	open_fn open, open64;
	open2_fn open_2, open64_2;
	openat_fn openat, openat64;
	openat2_fn openat_2, openat64_2;
	creat_fn creat, creat64;
	fopen_fn fopen, fopen64;
	tmpfile_fn tmpfile, tmpfile64;
	opendir_fn opendir;
	socketpair_fn socketpair;
	pipe_fn pipe;
	pipe2_fn pipe2;
	int_arg_fn epoll_create, epoll_create1, inotify_init1;
	no_arg_fn inotify_init;
	eventfd_fn eventfd;
	two_int_fn timerfd_create;
	signalfd_fn signalfd;
	memfd_fn memfd_create;
};

/* Until real_resolve() has run, every entry is a raw-syscall stand-in, so a
 * call that comes before the constructor (or during dlsym) still works. */
extern struct real_fns real;

/* Binds every entry with dlsym(RTLD_NEXT); safe to call more than once and
 * from several threads. fork, clone, posix_spawn, popen, system, wordexp and the
 * credential calls have no raw stand-in, so their
 * wrappers call this first. */
void real_resolve(void);

#endif
