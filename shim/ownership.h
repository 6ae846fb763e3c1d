/* ownership.h: who else holds a socket. The one rule: a close lingers only
 * when it releases the last reference to the socket that the shim knows of,
 * across descriptors (dup) and processes (fork); a socket the shim cannot
 * account for (held out of sight, or no room left in the books) is left
 * alone. */
#ifndef SAFECLOSE_OWNERSHIP_H
#define SAFECLOSE_OWNERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The shim's own environment variables, passed from a program to the one it
 * execs or spawns (never a user's setting): the books' descriptor, and the
 * pid that already counted the descriptors it hands on. */
#define SC_BOOKS_ENV "SAFECLOSE_BOOKS"
#define SC_COUNTED_ENV "SAFECLOSE_COUNTED"

enum own_verdict {
	OWN_UNKNOWN, /* not a socket the shim accounts for: leave it alone */
	OWN_SHARED,  /* another descriptor or process still holds it */
	OWN_LAST,    /* this descriptor was the last reference */
	/* The last reference, but the socket is still registered in an epoll
	 * set under a number closed earlier (here or in another process of the
	 * family), which no EPOLL_CTL_DEL can name any more: the registration
	 * dies only with the file, so the socket must not outlive this close. */
	OWN_LAST_IN_EPOLL,
};

/* Sets up the process's tables; the constructor calls it, and so does the
 * first tracking call if that comes earlier. False when memory is missing
 * (the shim then accounts for nothing and so touches nothing). */
bool own_init(void);

/* fd is a new TCP socket that only this process holds (socket, accept).
 * A record left for the same number is dropped: the number was reused, so
 * that descriptor was closed by a path the shim did not see. */
void own_track_new(int fd, uint64_t cookie);

/* Same, for a descriptor the kernel just gave the process, asking the socket
 * for its cookie (one getsockopt); errno is preserved. */
void own_track_socket(int fd);

/* newfd now refers to the same socket as oldfd (dup, dup2, dup3, F_DUPFD). */
void own_track_dup(int oldfd, int newfd);

/* No syscall: is fd on the shim's books, and under which cookie? */
bool own_lookup(int fd, uint64_t *cookie);

/* What taking a descriptor off the books found. */
struct own_released {
	uint64_t booked;  /* the cookie the books held it under */
	bool read_shut;   /* the program had shut the socket's read side */
	bool held_here;   /* (asked only when read_shut) another descriptor of
			   * this process still holds the socket */
};

/* fd is being let go; in_epoll: fd is registered in an epoll set of this
 * process (epb_registered). Takes fd off the books and tells whether this
 * was the last reference, and *out what the books said. It does not ask
 * the kernel what fd names now: a caller that acts on a last reference
 * checks the cookie first (a number reused out of the shim's sight names
 * another file). Async-signal-safe: atomics only, no syscall but getpid. */
enum own_verdict own_release(int fd, bool in_epoll, struct own_released *out);

/* fd is being replaced or closed where its socket may live on (another
 * process, a path the shim did not see): take it off the books. */
void own_forget(int fd);

/* fork(): before it, every socket on the books gains the child's references,
 * "in transit" under a ticket of this fork; after it, the parent (pid: what
 * fork returned) and the child each try to put them under the child's pid,
 * so that they are reclaimed when the child dies, whichever of the two is
 * killed first. The parent gives them back if fork failed (pid < 0); the
 * child drops from its books whatever was opened in between and so never
 * counted. Forks of one process are serialised between prepare and parent. */
void own_fork_prepare(void);
void own_fork_parent(pid_t pid);
void own_fork_child(void);

/* A fork child whose inherited references no one counted (a fork glibc made
 * behind the fork wrapper): it drops them all from its own table, leaving
 * the counts as they are, so its copies are left alone. */
void own_fork_child_uncounted(void);

/* fd was sent to another process (SCM_RIGHTS), or is held by a program
 * started behind the fork wrapper's back (posix_spawn, exec in a vfork
 * child): someone the shim cannot follow holds the socket. The record counts
 * such give-aways (a mark, not a reference: nothing is left to reclaim when
 * that someone is gone), and no close of the family lingers on it: the last
 * one is OWN_SHARED, and the record is freed with it. */
void own_give_away(int fd);

/* Undoes one own_give_away(fd) that did not happen after all (a spawn or
 * exec that failed: no program holds the socket). */
void own_take_back(int fd);

/* posix_spawn(), whose child's pid is known once it returns: the spawned
 * program's references are counted, not marked. own_spawn_ticket() gives
 * a ticket (0: none, where pids mean nothing to the books: then each hold
 * is own_give_away()'s mark); own_hold_for_spawn() counts one reference of
 * fd's socket under it; once the spawn has returned the child's pid,
 * own_spawn_started() puts them under that pid (reclaimed when it dies),
 * unless the child, running the shim, took them over first (its
 * SAFECLOSE_COUNTED names the ticket: own_exec_env()); if the spawn failed,
 * own_spawn_failed() gives each back. So a spawned handler that runs the
 * shim holds the last reference once the spawner lets go, and lingers. */
uint32_t own_spawn_ticket(void);
void own_hold_for_spawn(int fd, uint32_t ticket);
void own_spawn_started(int fd, uint32_t ticket, pid_t pid);
void own_spawn_failed(int fd, uint32_t ticket);

/* A child the shim does not follow (vfork, clone) is about to exec: the new
 * program's references are counted under the child's own pid, which the
 * program keeps (own_exec_child_pid(envp): 0 unless envp runs the program
 * under the shim with the books, so that its own forks are counted too,
 * and the books can name the pid; then each hold is own_give_away()'s
 * mark, as for a program the shim cannot follow). own_hold_for_exec_child()
 * counts one reference of fd's socket under pid, reclaimed once pid is
 * gone; a program that runs the shim takes them over as its own
 * (SAFECLOSE_COUNTED names pid: own_exec_env()) and lets go of them as it
 * closes or ends. If the exec failed, own_exec_child_failed() gives each
 * back. So the last of the family to let go lingers, as after a fork. */
uint32_t own_exec_child_pid(char *const envp[]);
void own_hold_for_exec_child(int fd, uint32_t pid);
void own_exec_child_failed(int fd, uint32_t pid);

/* posix_spawn(): own_give_away() of every socket on the books that the
 * spawned program inherits (not close-on-exec). */
void own_hold_inherited(void);

/* The mark of readshut.c: the program shut the socket's read side
 * (shutdown SHUT_RD/SHUT_RDWR), which the shim keeps open underneath, and
 * may still read `queued` bytes of it (UINT32_MAX: no bound), then
 * end-of-file. Kept in the socket's record, so every descriptor and process
 * of the family sees it, and it ends with the record (a second shutdown
 * only narrows what may be read). own_read_shut: is fd
 * such a socket, and how much may it still read (a memory lookup for every
 * other descriptor); own_read_after_shut: it read that much of it. */
void own_set_read_shut(int fd, uint32_t queued);
bool own_read_shut(int fd, uint32_t *left);
void own_read_after_shut(int fd, uint32_t bytes);

/* At start-up: the TCP sockets this program inherited (exec, inetd and
 * tcpserver style, systemd Accept=yes). When the family's books (passed
 * across exec) know a socket, they say who else holds it; otherwise, with
 * `guess` (SAFECLOSE_INHERITED=own), it is ours when no other descriptor of
 * ours refers to it, as inetd-style spawners hand connections over.
 * Returns how many TCP sockets were inherited (adopted or not). */
int own_adopt_inherited(bool guess);

/* SAFECLOSE_BOOKS in our environment, for the programs we exec or spawn. */
void own_publish_books(void);

/* The environment for an exec or spawn from this process: envp without any
 * SAFECLOSE_BOOKS or SAFECLOSE_COUNTED, and, only when envp still preloads
 * the shim (LD_PRELOAD naming libsafeclose: no other program can read them),
 * SAFECLOSE_BOOKS and the mark that our references were counted for the new
 * program; the books' descriptor is then made inheritable for it (until
 * own_exec_env_done()). So an explicitly empty envp stays empty, and a
 * program without the shim never sees the books. out has `room` pointers (at least the count of envp + 3); the
 * two strings are written to bufs. `ticket`: a spawn's (own_spawn_ticket());
 * `child`: the pid of a child the shim does not follow that counted its
 * references for the program (own_exec_child_pid()), 0 for none. Returns
 * the count. */
#define SC_ENV_ROOM 128 /* each of own_exec_env()'s two strings */
size_t own_exec_env(char *const envp[], char **out, size_t room, char bufs[2][SC_ENV_ROOM],
		    uint32_t ticket, uint32_t child);

/* The exec failed, or the spawn has returned: the books' descriptor is
 * close-on-exec again. */
void own_exec_env_done(void);

/* The program closes every descriptor from first to last (a close() of one:
 * first == last). When the books' descriptor is among them (the program
 * asked for all its descriptors to be closed, or saw the number in
 * /proc/self/fd), the shim lets go of it: no longer its own, the program's
 * call really closes it. The mapping stays valid in this process; only
 * passing the books to exec'd programs is lost. True when it was there. */
bool own_let_go_of_books(unsigned first, unsigned last);

/* The program is about to take number fd: when the books' descriptor is
 * there, it moves elsewhere (and SAFECLOSE_BOOKS with it). */
void own_yield_number(int fd);

/* The descriptor of the books shared with forked and exec'd processes
 * (-1: none). */
int own_books_fd(void);

/* The program needs the books' descriptor number (EMFILE): it is closed.
 * The books stay mapped, so the family keeps them; only the programs this
 * process execs from now on start books of their own. True when one was
 * freed. */
bool own_give_back_books(void);

/* Highest descriptor number ever put on the books, for iterating them. */
int own_max_fd(void);

/* The books' occupancy: records in use, and how many may be (beyond that a
 * new socket is left alone, reported once at error level). */
uint32_t own_records_in_use(void);
uint32_t own_records_room(void);

/* Reclaims the references of family members that are gone (their pid no
 * longer exists) and frees records left with none; returns how many were
 * freed. A whole pass; by itself it runs in steps from socket()/accept()
 * once the books are past half full (1/16 of the table every 1/256 of the
 * table's allocations), never on the close path. Async-signal-safe. */
uint32_t own_collect(void);

/* The books are shared, writable memory, and belong to processes with the
 * credentials of the one that made them. own_must_detach(): this process's
 * credentials now differ from theirs (setuid, setgid and the like). Then
 * own_detach() must run before any code of the program does: it leaves the
 * family's books for books of its own (so a worker that dropped to nobody
 * and then runs compromised code finds no mapping or descriptor of its
 * parent's to write). Its own sockets keep their records there; one that
 * someone else of the family held too is marked held out of sight in both
 * books: no close of either side lingers on it any more. Not in a vfork or
 * clone child sharing this memory (self.h). */
bool own_must_detach(void);
void own_detach(void);

#endif
