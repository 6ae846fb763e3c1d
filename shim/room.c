/* room.c: owns the order in which the shim gives descriptor numbers back to
 * a program that ran out (see room.h): what lingers goes first, since ending
 * a linger early costs at most a reset the program would have had anyway;
 * the shim's fixed descriptors only when nothing lingers. */
#include "room.h"

#include <errno.h>

#include "config.h"
#include "ownership.h"
#include "reaper.h"
#include "self.h"

bool room_made(int need)
{
	if (sc_cfg.mode == SC_MODE_OFF || (errno != EMFILE && errno != ENFILE) || !sc_self())
		return false; /* a vfork or clone child must not touch its parent's lingers */
	int saved_errno = errno;
	int freed = reaper_make_room(need);

	if (freed < need && own_give_back_books())
		freed++;
	errno = saved_errno;
	return freed > 0;
}
