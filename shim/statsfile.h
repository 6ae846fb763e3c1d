/* statsfile.h: the per-process stats file (SAFECLOSE_STATS). */
#ifndef SAFECLOSE_STATSFILE_H
#define SAFECLOSE_STATSFILE_H

#include <stdbool.h>
#include <stddef.h>

/* From the constructor: remember where to write (the path is copied) and
 * how often. A NULL path: no file, and every call below returns at once.
 * When the file for this pid was left by this very process's previous image
 * (execve: the same pid and proc_start), the counts go on from it. */
bool statsfile_init(const char *path, long interval_ms); /* false: no file */

/* Writes the counters as one JSON object to a temporary file renamed over
 * the path (a reader sees the old file or the new one, never half of one).
 * Async-signal-safe: static buffers taken with an atomic flag, raw system
 * calls, no malloc, about 1 KiB of stack.
 * Only in the process the shim follows. A file that cannot be written: one
 * error line per process, then the program runs on. */
void statsfile_write(void);

/* The final write (exit, exec) also stops the periodic ones, waiting for
 * one under way in another thread; a failed exec starts them again. */
void statsfile_resume(void);

/* From the safe points and the background thread: writes when the interval
 * has passed since the last write. One atomic load when there is no file,
 * one clock read otherwise. */
void statsfile_due(void);

/* The JSON object for this process into buf; its length (size when it did
 * not fit). For the writer and the unit tests. */
size_t statsfile_format(char *buf, size_t size);

#endif
