/* trace.c: `make shape` only, never in the library that ships. Linked into
 * build-shape/libsafeclose.so, whose other files are built with gcc's
 * -finstrument-functions: it records, per thread, every function of the
 * shim entered from the moment one is entered at depth 0 (an exported
 * wrapper, the constructor, the background thread's loop) until that one
 * returns, and appends the record to the file named by SHAPE_TRACE as one
 * line: the thread id, then offset:depth for each entry, offsets into the
 * library (tests/shape/shape.py names their files). A record longer than
 * the buffer is cut short and says so ("cut"). */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rawsys.h" /* the shim exports syscall() itself */

#define NO_TRACE __attribute__((no_instrument_function))
#define ENTRIES 2048

void __cyg_profile_func_enter(void *fn, void *site) NO_TRACE;
void __cyg_profile_func_exit(void *fn, void *site) NO_TRACE;

static __thread int depth;
static __thread int used;
static __thread int cut;
static __thread struct { uintptr_t at; int depth; } entries[ENTRIES];
static __thread char line[ENTRIES * 16 + 64];

static uintptr_t base(void) NO_TRACE;
static uintptr_t base(void)
{
	static uintptr_t found;
	Dl_info info;

	if (!found && dladdr((void *)base, &info))
		found = (uintptr_t)info.dli_fbase;
	return found;
}

void __cyg_profile_func_enter(void *fn, void *site)
{
	(void)site;
	if (depth == 0)
		used = cut = 0;
	if (used < ENTRIES) {
		entries[used].at = (uintptr_t)fn - base();
		entries[used++].depth = depth;
	} else {
		cut = 1;
	}
	depth++;
}

/* One write per record, O_APPEND: the records of processes and threads that
 * trace at once never interleave. Raw calls, out of the shim's sight. */
static void append(void) NO_TRACE;
static void append(void)
{
	const char *path = getenv("SHAPE_TRACE");
	size_t n;
	int fd;

	if (!path || (fd = (int)raw_syscall(SYS_openat, AT_FDCWD, path,
					O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return;
	n = (size_t)snprintf(line, sizeof line, "%ld%s", (long)raw_syscall(SYS_gettid),
			     cut ? " cut" : "");
	for (int i = 0; i < used; i++)
		n += (size_t)snprintf(line + n, sizeof line - n, " %lx:%d",
				      (unsigned long)entries[i].at, entries[i].depth);
	line[n++] = '\n';
	raw_syscall(SYS_write, fd, line, n);
	raw_syscall(SYS_close, fd);
}

void __cyg_profile_func_exit(void *fn, void *site)
{
	(void)fn;
	(void)site;
	if (--depth == 0 && used)
		append();
}
