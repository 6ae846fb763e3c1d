/* room.h: a program must never be refused a descriptor it would have had
 * without the shim. Every wrapper of a call that creates descriptors runs
 * the call through WITH_ROOM: when it fails for want of a number (EMFILE,
 * ENFILE), the shim gives numbers back (room_made) and the call is tried
 * once more; its result and errno are then the program's. */
#ifndef SAFECLOSE_ROOM_H
#define SAFECLOSE_ROOM_H

#include <stdbool.h>

/* After a failed descriptor-creating call: when errno says EMFILE or ENFILE,
 * frees at least `need` numbers of the shim's if it can (lingers first, the
 * worst first, see reaper.h; then the thread's queue and epoll set; then the
 * books' descriptor). True when it freed any: the call is worth a retry.
 * errno is preserved. */
bool room_made(int need);

/* `call` (an int-returning expression, failing with -1) that needs `need`
 * new numbers. */
#define WITH_ROOM(need, call)                                  \
	({                                                     \
		__auto_type room_r_ = (call);                  \
		if (room_r_ < 0 && room_made(need))            \
			room_r_ = (call);                      \
		room_r_;                                       \
	})

/* The same for a call returning a pointer (FILE *, DIR *), NULL on failure. */
#define WITH_ROOM_PTR(call)                                    \
	({                                                     \
		__auto_type room_p_ = (call);                  \
		if (!room_p_ && room_made(1))                  \
			room_p_ = (call);                      \
		room_p_;                                       \
	})

#endif
