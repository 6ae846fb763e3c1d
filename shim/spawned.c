/* spawned.c: owns the accounting of programs started behind the fork wrapper's
 * back: posix_spawn (whose child glibc makes with clone(CLONE_VM|CLONE_VFORK)
 * and runs the file actions in, out of the shim's sight) and the exec of a
 * child the shim does not follow (vfork, clone). Such a program holds our
 * sockets: each descriptor it will have is a reference in the family's
 * books, counted under a ticket that becomes the spawned child's pid, or
 * under the exec'ing child's own pid when the new program runs the shim
 * with the books (so that what it forks is counted too), reclaimed once
 * that program is gone (otherwise a mark, own_give_away, and no close of
 * the family is ever taken as the last one). A shimmed program started this way takes them over; the
 * references or marks go back when the spawn or exec fails. popen and
 * system only mark (glibc keeps the shell's pid to itself).
 *
 * The file actions are read from glibc's own record (posix/spawn_int.h,
 * struct __spawn_action), rather than by interposing the adddup2 family and
 * keeping a shadow record: a posix_spawn_file_actions_t is a value the
 * program may copy, reuse or free without telling us, and glibc's internal
 * callers fill it without the PLT. The layout is checked once against what
 * glibc's own functions write; if it differs (another libc), every socket on
 * the books is taken as held, which only ever leaves sockets alone. */
#include "spawned.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include "ownership.h"
#include "probe.h"
#include "rawsys.h"

/* glibc 2.36 posix/spawn_int.h */
enum glibc_spawn_tag {
	DO_CLOSE,
	DO_DUP2,
	DO_OPEN,
	DO_CHDIR,
	DO_FCHDIR,
	DO_CLOSEFROM,
	DO_TCSETPGRP,
	DO_TAGS
};

struct glibc_spawn_action {
	enum glibc_spawn_tag tag;
	union {
		struct { int fd; } close_action;
		struct { int fd; int newfd; } dup2_action;
		struct { int fd; char *path; int oflag; mode_t mode; } open_action;
		struct { char *path; } chdir_action;
		struct { int fd; } fchdir_action;
		struct { int from; } closefrom_action;
		struct { int fd; } setpgrp_action;
	} action;
};

#define MAX_ACTIONS 4096 /* more than any program adds; beyond: take all as held */

/* glibc writes the actions the way this file reads them. */
static bool layout_checked;

static void check_layout(void)
{
	posix_spawn_file_actions_t a;

	if (posix_spawn_file_actions_init(&a) != 0)
		return;
	if (posix_spawn_file_actions_addclose(&a, 7) == 0 &&
	    posix_spawn_file_actions_adddup2(&a, 5, 6) == 0 &&
	    posix_spawn_file_actions_addopen(&a, 8, "/", O_RDONLY, 0) == 0 &&
	    posix_spawn_file_actions_addclosefrom_np(&a, 9) == 0 && a.__used == 4 &&
	    a.__allocated >= 4 && a.__actions) {
		const struct glibc_spawn_action *act = (const void *)a.__actions;
		layout_checked = act[0].tag == DO_CLOSE && act[0].action.close_action.fd == 7 &&
				 act[1].tag == DO_DUP2 && act[1].action.dup2_action.fd == 5 &&
				 act[1].action.dup2_action.newfd == 6 && act[2].tag == DO_OPEN &&
				 act[2].action.open_action.fd == 8 && act[3].tag == DO_CLOSEFROM &&
				 act[3].action.closefrom_action.from == 9;
	}
	posix_spawn_file_actions_destroy(&a);
}

/* The child's descriptors the actions touch: what each refers to, as the
 * number of the parent's descriptor it copies (-1: none of the parent's). */
struct child_fds {
	struct { int fd, from; } touched[MAX_ACTIONS];
	int n;
	int closed_from; /* every untouched descriptor from here up is closed */
};

static int *slot_of(struct child_fds *c, int fd)
{
	for (int i = 0; i < c->n; i++)
		if (c->touched[i].fd == fd)
			return &c->touched[i].from;
	c->touched[c->n].fd = fd;
	return &c->touched[c->n++].from;
}

static int parent_fd_at(struct child_fds *c, int fd)
{
	for (int i = 0; i < c->n; i++)
		if (c->touched[i].fd == fd)
			return c->touched[i].from;
	return fd < c->closed_from ? fd : -1;
}

static void apply(struct child_fds *c, const struct glibc_spawn_action *a)
{
	switch (a->tag) {
	case DO_CLOSE:
		*slot_of(c, a->action.close_action.fd) = -1;
		break;
	case DO_OPEN:
		*slot_of(c, a->action.open_action.fd) = -1;
		break;
	case DO_DUP2: {
		/* dup2(fd, fd) clears close-on-exec: the child keeps fd. */
		int from = parent_fd_at(c, a->action.dup2_action.fd);
		*slot_of(c, a->action.dup2_action.newfd) = from;
		break;
	}
	case DO_CLOSEFROM:
		if (a->action.closefrom_action.from < c->closed_from)
			c->closed_from = a->action.closefrom_action.from;
		for (int i = 0; i < c->n; i++)
			if (c->touched[i].fd >= c->closed_from)
				c->touched[i].from = -1;
		break;
	default:
		break;
	}
}

/* Beyond what h can list for the undo, a mark (left alone for good). */
static void hold(struct spawn_holds *h, int fd)
{
	uint64_t cookie;

	if (!own_lookup(fd, &cookie))
		return;
	if (h->n < SPAWN_HOLDS_MAX) {
		if (h->pid)
			own_hold_for_exec_child(fd, h->pid);
		else
			own_hold_for_spawn(fd, h->ticket);
		h->fd[h->n++] = fd;
	} else {
		own_give_away(fd);
	}
}

void spawn_holds_undo(struct spawn_holds *h)
{
	for (int i = 0; i < h->n; i++)
		if (h->pid)
			own_exec_child_failed(h->fd[i], h->pid);
		else
			own_spawn_failed(h->fd[i], h->ticket);
	h->n = 0;
}

void spawn_holds_started(struct spawn_holds *h, pid_t pid)
{
	for (int i = 0; i < h->n; i++)
		own_spawn_started(h->fd[i], h->ticket, pid);
}

static bool is_cloexec(int fd)
{
	long flags = raw_syscall(SYS_fcntl, fd, F_GETFD);

	return flags < 0 || (flags & FD_CLOEXEC);
}

/* Everything on the books, close-on-exec or not. */
static void hold_every_socket(struct spawn_holds *h)
{
	for (int fd = 0; fd <= own_max_fd(); fd++)
		hold(h, fd);
}

static bool touched(const struct child_fds *c, int fd)
{
	for (int i = 0; i < c->n; i++)
		if (c->touched[i].fd == fd)
			return true;
	return false;
}

/* The descriptors the program inherits as they are: not close-on-exec, and
 * untouched by the actions c (NULL: there are none). */
static void hold_inherited(struct spawn_holds *h, const struct child_fds *c)
{
	int below = c ? c->closed_from : INT32_MAX;

	for (int fd = 0; fd <= own_max_fd() && fd < below; fd++)
		if ((!c || !touched(c, fd)) && own_lookup(fd, &(uint64_t){ 0 }) && !is_cloexec(fd))
			hold(h, fd);
}

/* The child's descriptors after the actions; NULL when they cannot be
 * followed (a layout or a kind of action this file does not know). */
static struct child_fds *follow(const posix_spawn_file_actions_t *actions)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const struct glibc_spawn_action *act = (const void *)actions->__actions;
	int used = actions->__used;

	pthread_once(&once, check_layout);
	if (!layout_checked || used > MAX_ACTIONS || used > actions->__allocated || !act)
		return NULL;
	struct child_fds *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->closed_from = INT32_MAX;
	for (int i = 0; i < used; i++) {
		if (act[i].tag >= DO_TAGS) {
			free(c);
			return NULL;
		}
		apply(c, &act[i]);
	}
	return c;
}

void spawn_hold_for_actions(const posix_spawn_file_actions_t *actions, uint32_t ticket,
			    struct spawn_holds *h)
{
	int saved_errno = errno;

	h->n = 0;
	h->ticket = ticket;
	h->pid = 0;
	if (!actions || actions->__used <= 0) {
		hold_inherited(h, NULL);
	} else {
		struct child_fds *c = follow(actions);
		for (int i = 0; c && i < c->n; i++)
			if (c->touched[i].from >= 0)
				hold(h, c->touched[i].from);
		if (c)
			hold_inherited(h, c);
		else
			hold_every_socket(h); /* cannot follow them: take them all as held */
		free(c);
	}
	errno = saved_errno;
}

/* The parent's descriptor (on the books) that refers to the socket cookie. */
static int booked_fd_of(uint64_t cookie)
{
	uint64_t booked;

	for (int fd = 0; fd <= own_max_fd(); fd++)
		if (own_lookup(fd, &booked) && booked == cookie)
			return fd;
	return -1;
}

struct linux_dirent64 {
	uint64_t ino;
	int64_t off;
	uint16_t reclen;
	uint8_t type;
	char name[];
};

static int fd_number(const char *name)
{
	int n = 0;

	if (*name < '0' || *name > '9')
		return -1;
	for (; *name >= '0' && *name <= '9'; name++)
		n = n * 10 + (*name - '0');
	return *name ? -1 : n;
}

/* In a vfork child: no allocation, no stdio, the directory read into a
 * buffer on the stack with getdents64. */
void spawn_hold_open_sockets(struct spawn_holds *h, char *const envp[])
{
	int saved_errno = errno;
	char buf[2048];
	long n;

	h->n = 0;
	h->ticket = 0;
	h->pid = 0;
	if (own_max_fd() < 0)
		return;
	h->pid = own_exec_child_pid(envp); /* 0: marks */
	int dir = (int)raw_syscall(SYS_openat, AT_FDCWD, "/proc/self/fd",
				   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		hold_every_socket(h); /* cannot see them: take them all as held */
		errno = saved_errno;
		return;
	}
	while ((n = raw_syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
		for (long off = 0; off < n;) {
			const struct linux_dirent64 *d = (const void *)(buf + off);
			int fd = fd_number(d->name), from;
			uint64_t cookie;
			off += d->reclen;
			if (fd < 0 || fd == dir || is_cloexec(fd))
				continue;
			if ((cookie = probe_cookie(fd)) && (from = booked_fd_of(cookie)) >= 0)
				hold(h, from);
		}
	}
	raw_syscall(SYS_close, dir);
	errno = saved_errno;
}
