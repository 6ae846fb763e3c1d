/* reaper.h: lingering in the background, so close() returns at once. */
#ifndef SAFECLOSE_REAPER_H
#define SAFECLOSE_REAPER_H

#include <stdbool.h>
#include <stdint.h>

/* Called from close() for the last reference to a socket that must linger:
 * takes it out of the application's epoll sets, keeps it alive under a
 * descriptor of the shim's (high, close-on-exec) and passes it to the
 * background thread. True when it did: the caller then closes fd as usual,
 * and the number is free at once. False when it cannot (over the cap, no
 * descriptor, no thread): the caller falls back. Async-signal-safe once the
 * thread runs; errno is preserved. */
bool reaper_hand_off(int fd, uint64_t cookie);

/* Wakes the thread (starting it if need be) for readshut_step(), which it
 * then calls every LINGER_TICK_MS while real SHUT_RDs wait. False when no
 * thread runs. */
bool reaper_wake(void);

/* Starts the background thread if it is not running (from a normal context:
 * the socket and accept wrappers call it, so close() rarely has to). */
void reaper_start(void);

/* The program is about to take number fd (one of the shim's) for a file of
 * its own: the thread's pipe or epoll set there moves elsewhere. A lingering
 * socket there is let go with it; then the thread is held (true returned)
 * until reaper_number_yielded(), so it never touches the program's file,
 * and its slot sees that the number changed hands. */
bool reaper_yield_number(int fd);
void reaper_number_yielded(void);

/* The background thread runs in this process. */
bool reaper_running(void);

/* Waits until every socket handed off is done, or until the monotonic
 * clock (sc_now_ms) reaches until_ms. Async-signal-safe. */
void reaper_wait(uint64_t until_ms);

/* At exit: reaper_wait() for at most SAFECLOSE_EXIT_WAIT_MS. */
void reaper_wait_at_exit(void);

/* At debug level: what was handed off, released and fallen back since start. */
void reaper_log_stats(void);


/* Registers the fork handlers: a child keeps none of the shim's lingering
 * descriptors and starts its own thread when it needs one. */
void reaper_init(void);


#endif
