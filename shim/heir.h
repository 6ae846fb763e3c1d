/* heir.h: a short-lived process that lingers on the sockets a program lets
 * go of at exec or exit, once the kernel has shown that the program really
 * was replaced (exec) or is gone (exit), and never before. */
#ifndef SAFECLOSE_HEIR_H
#define SAFECLOSE_HEIR_H

#include <stdbool.h>
#include <stdint.h>

enum heir_event { HEIR_AT_EXEC, HEIR_AT_EXIT };

/* What the heir is to take over, one role per descriptor number. */
struct heir_plan {
	enum heir_event event;
	int slot;     /* one of a few, -1: none */
	uint8_t *roles;
	uint32_t size;
	int top;      /* highest number with a role, -1: none */
	int sockets;  /* sockets the heir would linger on */
	int releases; /* sockets it would only take off the books */
	bool started; /* a heir runs on it */
};

/* Starts a plan: every socket lingering in the shim's background thread is
 * in it (its descriptors are close-on-exec and die with the process). False
 * when there is no room for it (no memory, or several already under way).
 * An exec's plan takes notes from the close path from now on (below).
 * Async-signal-safe. */
bool heir_plan_begin(struct heir_plan *p, enum heir_event event);

/* One of the program's sockets, connected and let go of at the event. At
 * exit the caller has taken it off the books already (and found it the
 * last reference); at exec the heir does that once the exec succeeded, and
 * lingers only when it was the last. */
void heir_plan_socket(struct heir_plan *p, int fd);

/* A socket of the program's that dies at the exec but is not worth a linger
 * (a listener, say): the heir takes it off the books once the exec succeeded. */
void heir_plan_release(struct heir_plan *p, int fd);

/* fd is one of the program's sockets in the plan (for a caller that has to
 * linger on them itself after all). */
bool heir_plan_takes(const struct heir_plan *p, int fd);

/* Done with the plan (a heir that started keeps what it needs). */
void heir_plan_end(struct heir_plan *p);

/* Makes the heir (a process of its own, invisible to the program's wait()
 * and SIGCHLD, reparented away at once) with a copy of the plan's
 * descriptors and none other. It acts when the last copy of this process's
 * end of a close-on-exec socket pair is gone: at the exec's success or at
 * the process's end. Returns a ticket (>= 0) for heir_stand_down(),
 * HEIR_NOTHING when nothing needs one (no heir made), or -1 when none could
 * be made (the caller falls back). Never waits on the heir.
 * Async-signal-safe; errno is preserved. */
#define HEIR_NOTHING (-2)
int heir_start(struct heir_plan *p);

/* The exec failed: the heir of `ticket` closes its copies, touching
 * nothing, and goes. errno is preserved. */
void heir_stand_down(int ticket);

/* Called by the close path around taking fd off the books, while an exec
 * may be under way in another thread: a socket the heir was to take off the
 * books itself is done with, and `last` says whether the heir's copy is the
 * last reference once the exec has dropped the program's own. */
void heir_note_releasing(int fd);
void heir_note_released(int fd, bool last);

/* dup2/dup3 onto fd: when fd is our end of a heir's socket pair, it moves
 * elsewhere (its closing would tell the heir the program is gone). */
void heir_yield_number(int fd);

/* In a fork child: the heirs belong to the parent. */
void heir_after_fork_child(void);

#endif
