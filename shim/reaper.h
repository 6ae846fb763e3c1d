/* reaper.h: lingering in the background, so close() returns at once. */
#ifndef SAFECLOSE_REAPER_H
#define SAFECLOSE_REAPER_H

#include <stdbool.h>
#include <stdint.h>

/* Called from close() for the last reference to a socket that must linger,
 * already out of every epoll set of the program's (release.c's rule for a
 * socket kept alive): keeps it alive under a
 * descriptor of the shim's (high, close-on-exec), sends its FIN and queues
 * it for the background thread (which need not run yet). True when it did:
 * the caller then closes fd as usual, and the number is free at once. False
 * when it cannot (over the descriptor budget, SAFECLOSE_MAX_LINGER=0, no
 * descriptor, no queue, the thread could not start): the caller falls back.
 * Past SAFECLOSE_MAX_LINGER it still queues: the thread then ends the worst
 * older linger to make room. The linger's end is counted in `arm`
 * (enum sc_arm), which travels with it, as does `read_open`: the books
 * say the program never shut its read side, so an end of stream the
 * thread reads is the peer's FIN, with no TCP_INFO to ask (linger.h).
 * Async-signal-safe; never starts a thread; errno is preserved. */
bool reaper_hand_off(int fd, uint64_t cookie, unsigned arm, bool read_open);

/* Wakes the thread (starting it if need be) for readshut_step(), which it
 * then calls every LINGER_TICK_MS while real SHUT_RDs wait. False when no
 * thread runs. */
bool reaper_wake(void);

/* A call no signal handler makes (socket, accept, epoll_ctl, fclose,
 * shutdown, exit): when work was queued while no thread ran, the thread
 * starts here; the stats file is rewritten here when its interval has
 * passed. An atomic load or two otherwise. */
void reaper_safe_point(void);

/* For a call that needs the caller alone in its process (unshare with
 * CLONE_NEWUSER, setns into a user or mount namespace): the thread, when it
 * runs, leaves its loop at a quit message and exits, keeping its tables,
 * its epoll set and the queue (hand-offs meanwhile are queued); true when it
 * was running and is now gone. reaper_resume() starts it again, and it
 * carries on with the same sockets. From a normal context only. */
bool reaper_pause(void);
void reaper_resume(void);

/* The program was refused a descriptor (EMFILE, ENFILE): give numbers back,
 * at least `need` if there are that many. First the lingers, the worst
 * first (a peer that has all our output and keeps sending, then the one
 * lingering longest), ended with the no-wait fallback (FIN out, input
 * discarded), as nginx drops reusable connections under pressure; with no
 * linger left, the thread's own queue and epoll set (the thread is paused;
 * all are made again at the next hand-off). Returns how many were freed.
 * errno is preserved. */
int reaper_make_room(int need);

/* Around every dup2/dup3 of the program's that the kernel may carry out:
 * reaper_replace_begin() before anything else, reaper_replace_end() once
 * the kernel has answered, in every path. Between them,
 * reaper_yield_number(fd) when the number is one of the shim's: the program
 * is about to take it for a file of its own, and the thread's pipe or epoll
 * set there moves elsewhere. A lingering socket there is let go with it;
 * then the thread is held (true returned) until reaper_replace_end(),
 * `yielded` true (reaper_yield_number was called) and `holding` what it
 * returned, so the thread never touches the program's file and its slot
 * sees that the number changed hands. Async-signal-safe but for the hold,
 * as before. */
void reaper_replace_begin(void);
bool reaper_yield_number(int fd);
void reaper_replace_end(bool yielded, bool holding);

/* Waits until every socket handed off is done, or until the monotonic
 * clock (sc_now_ms) reaches until_ms; when no thread runs, the queued
 * sockets linger in the calling thread meanwhile. Async-signal-safe. */
void reaper_wait(uint64_t until_ms);

/* At exit: reaper_wait() for at most SAFECLOSE_EXIT_WAIT_MS. */
void reaper_wait_at_exit(void);

/* At debug level: what was handed off, released and fallen back since start. */
void reaper_log_stats(void);


/* Registers the fork handlers: a child keeps none of the shim's lingering
 * descriptors and makes its own queue when it needs one. */
void reaper_init(void);


#endif
