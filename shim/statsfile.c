/* statsfile.c: owns the stats file: where it goes (SAFECLOSE_STATS, %p the
 * pid), what it holds (one JSON object, schema version 1), when it is
 * written (exit, _exit, before execve, and every SAFECLOSE_STATS_INTERVAL_MS
 * at the first safe point after it: no thread of its own, so a program that
 * never lingers still has none), and how (a temporary file renamed into
 * place). Everything from the write on is async-signal-safe: _exit() runs it
 * from signal handlers. */
#include "statsfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "rawsys.h"
#include "self.h"
#include "shim.h"
#include "stats.h"

#define PATH_ROOM 512 /* a longer path is refused, once, at start-up */
#define JSON_ROOM 8192 /* both arms with every histogram bucket in use fit */

static char template[PATH_ROOM];
static bool enabled;
static long interval_ms;
static uint64_t next_due_ms;  /* monotonic; 0: never (interval 0) */
static uint64_t paused_due_ms; /* next_due_ms while a final write holds them off */
static uint64_t started_ms;   /* wall clock, this process's start (or fork) */
static uint64_t proc_start;   /* /proc/self/stat's starttime: with the pid, names
				 the process across execve */
static int complained;
/* The object is built in static memory, not on a stack a signal handler may
 * have made small: one buffer for the periodic writes and one for the last
 * ones (exit, exec), each taken with an atomic flag; a write that finds its
 * buffer taken (another thread writing the same counts this moment) skips. */
struct json_room {
	int busy;
	char text[JSON_ROOM];
};
static struct json_room periodic_room, final_room;
/* Copied at start-up: servers that retitle themselves (nginx's "worker
 * process") overwrite the memory program_invocation_name points into. */
static char program[64];

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void restart_clock(void)
{
	started_ms = wall_ms();
	__atomic_store_n(&next_due_ms, interval_ms ? sc_now_ms() + (uint64_t)interval_ms : 0,
			 __ATOMIC_RELAXED);
}

/* Field 22 of /proc/self/stat, the process's start in clock ticks after
 * boot: unchanged by execve, different for any other process that gets the
 * same pid later. 0 when it cannot be read. Raw calls: a fork handler. */
static uint64_t read_proc_start(void)
{
	char buf[1024];
	int fd = (int)raw_syscall(SYS_openat, AT_FDCWD, "/proc/self/stat", O_RDONLY | O_CLOEXEC);
	long n = fd >= 0 ? raw_syscall(SYS_read, fd, buf, sizeof buf - 1) : -1;
	uint64_t v = 0;

	if (fd >= 0)
		raw_syscall(SYS_close, fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* After the command's closing parenthesis: field 3 onwards. */
	const char *p = strrchr(buf, ')');
	for (int field = 2; p && *p && field < 22; p++)
		field += *p == ' ';
	for (; p && *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	return v;
}

/* A forked child counts and writes for itself, from zero. */
static void after_fork_child(void)
{
	stats_reset();
	restart_clock();
	proc_start = read_proc_start();
	/* A thread of the parent's may have been writing: not in the child. */
	periodic_room.busy = final_room.busy = 0;
}

static void expand(char *out, size_t size, long pid);

/* The number after `key` at or after *at (moving *at past it); 0 if none. */
static uint64_t number_after(const char **at, const char *key)
{
	const char *p = *at ? strstr(*at, key) : NULL;

	if (!p)
		return 0;
	char *end;
	uint64_t v = strtoull(p + strlen(key), &end, 10);
	*at = end;
	return v;
}

/* One arm's counters as this file writes them (the keys in their order). */
static void parse_arm(const char *text, enum sc_arm arm, struct sc_arm_counts *c)
{
	char head[32];
	const char *at;

	sc_format(head, sizeof head, "\"%s\": {", stats_arm_name(arm));
	at = strstr(text, head);
	*c = (struct sc_arm_counts){ 0 };
	uint64_t *simple[] = { &c->closes, &c->abortive, &c->at_risk, &c->clean, &c->lingered,
			       &c->fallback, &c->peer_finished, &c->idle_timeout,
			       &c->total_timeout, &c->cut_short, &c->bytes_discarded };
	static const char *const keys[] = { "\"closes\": ", "\"abortive\": ", "\"at_risk\": ",
					    "\"clean\": ", "\"lingered\": ", "\"fallback\": ",
					    "\"peer_finished\": ", "\"idle_timeout\": ",
					    "\"total_timeout\": ", "\"cut_short\": ",
					    "\"bytes_discarded\": " };
	for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++)
		*simple[i] = number_after(&at, keys[i]);
	c->linger_max_ms = number_after(&at, "\"max\": ");
	const char *hist = at ? strstr(at, "\"linger_hist\": [") : NULL, *stop;
	stop = hist ? strchr(hist, '}') : NULL;
	for (const char *p = hist ? strchr(hist, '[') + 1 : NULL; p && (p = strchr(p, '[')) && p < stop;) {
		char *end;
		uint64_t upper = strtoull(p + 1, &end, 10);
		/* strtoull always sets end (cppcheck takes it for possibly NULL). */
		/* cppcheck-suppress nullPointerArithmeticRedundantCheck */
		uint64_t count = strtoull(end + 1, &end, 10);
		c->linger_hist[stats_bucket(upper)] += count;
		p = end;
	}
}

/* An execve() left this process's file behind (the same pid and the same
 * proc_start): the new image goes on from its counts, so nothing the old
 * image counted is lost when the new one writes the same file. */
static void carry_over_from_previous_image(void)
{
	char path[PATH_ROOM], *text = periodic_room.text, mine[64];
	long pid = raw_syscall(SYS_getpid);

	expand(path, sizeof path, pid);
	int fd = (int)raw_syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	long n = fd >= 0 ? raw_syscall(SYS_read, fd, text, JSON_ROOM - 1) : -1;
	if (fd >= 0)
		raw_syscall(SYS_close, fd);
	if (n <= 0 || !proc_start)
		return;
	text[n] = '\0';
	sc_format(mine, sizeof mine, "\"pid\": %ld, ", pid);
	const char *at = strstr(text, mine);
	if (!at || number_after(&at, "\"proc_start\": ") != proc_start)
		return; /* another process's, from before: overwritten */
	at = text;
	uint64_t started = number_after(&at, "\"started\": ");
	uint64_t started_frac = number_after(&at, ".");
	started_ms = started * 1000 + started_frac;
	for (enum sc_arm arm = 0; arm < SC_ARMS; arm++) {
		struct sc_arm_counts c;
		parse_arm(text, arm, &c);
		stats_add(arm, &c);
	}
}

bool statsfile_init(const char *path, long interval)
{
	if (!path)
		return false;
	if (strlen(path) >= PATH_ROOM - 64) {
		sc_log_write(SC_LOG_ERROR, __func__, "SAFECLOSE_STATS is too long (%zu bytes); no stats file",
			     strlen(path));
		return false;
	}
	strcpy(template, path);
	sc_format(program, sizeof program, "%s", program_invocation_short_name);
	interval_ms = interval;
	restart_clock();
	proc_start = read_proc_start();
	carry_over_from_previous_image();
	pthread_atfork(NULL, NULL, after_fork_child);
	enabled = true;
	return true;
}

/* ---- the JSON object ---------------------------------------------------- */

struct json {
	char *buf;
	size_t size, len;
};

static void put(struct json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct json *j, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (j->len < j->size)
		j->len += (size_t)sc_vformat(j->buf + j->len, j->size - j->len, fmt, ap);
	va_end(ap);
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void put_string(struct json *j, const char *s)
{
	put(j, "\"");
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			put(j, "\\%c", c);
		else if (c < 0x20)
			put(j, "\\u%s%x", c < 0x10 ? "000" : "00", c);
		else
			put(j, "%c", c);
	}
	put(j, "\"");
}

/* Seconds since the epoch, to the millisecond, as a JSON number. */
static void put_time(struct json *j, const char *name, uint64_t ms)
{
	put(j, "\"%s\": %llu.%s%s%llu", name, (unsigned long long)(ms / 1000),
	    ms % 1000 < 100 ? "0" : "", ms % 1000 < 10 ? "0" : "",
	    (unsigned long long)(ms % 1000));
}

static void put_arm(struct json *j, enum sc_arm arm)
{
	struct sc_arm_counts c;

	stats_snapshot(arm, &c);
	put(j, "\"%s\": {\"closes\": %llu, \"abortive\": %llu, \"at_risk\": %llu, "
	       "\"clean\": %llu, ", stats_arm_name(arm), (unsigned long long)c.closes,
	    (unsigned long long)c.abortive, (unsigned long long)c.at_risk,
	    (unsigned long long)c.clean);
	put(j, "\"lingered\": %llu, \"fallback\": %llu, \"peer_finished\": %llu, "
	       "\"idle_timeout\": %llu, \"total_timeout\": %llu, \"cut_short\": %llu, "
	       "\"bytes_discarded\": %llu, ",
	    (unsigned long long)c.lingered, (unsigned long long)c.fallback,
	    (unsigned long long)c.peer_finished, (unsigned long long)c.idle_timeout,
	    (unsigned long long)c.total_timeout, (unsigned long long)c.cut_short,
	    (unsigned long long)c.bytes_discarded);
	put(j, "\"linger_ms\": {\"p50\": %llu, \"p99\": %llu, \"max\": %llu}, ",
	    (unsigned long long)stats_percentile(c.linger_hist, 50, c.linger_max_ms),
	    (unsigned long long)stats_percentile(c.linger_hist, 99, c.linger_max_ms),
	    (unsigned long long)c.linger_max_ms);
	/* The histogram itself, [[bucket's largest ms, lingers], ...] for the
	 * buckets in use: a family's files add up into one distribution. */
	put(j, "\"linger_hist\": [");
	for (unsigned b = 0, first = 1; b < STATS_BUCKETS; b++) {
		if (!c.linger_hist[b])
			continue;
		put(j, "%s[%llu, %llu]", first ? "" : ", ",
		    (unsigned long long)stats_bucket_upper(b), (unsigned long long)c.linger_hist[b]);
		first = 0;
	}
	put(j, "]}");
}

/* What the process ran with, as an operator would name it: observe is the
 * split at 0 %. */
static long effective_ab(void)
{
	return sc_may_linger() ? sc_cfg.ab_percent : 0;
}

size_t statsfile_format(char *buf, size_t size)
{
	struct json j = { buf, size, 0 };

	put(&j, "{\"version\": 1, \"pid\": %ld, \"ppid\": %ld, \"proc_start\": %llu, "
	       "\"program\": ", raw_syscall(SYS_getpid), raw_syscall(SYS_getppid),
	    (unsigned long long)proc_start);
	put_string(&j, program);
	put(&j, ", \"mode\": \"%s\", \"ab\": %ld, ", sc_mode_name(sc_cfg.mode), effective_ab());
	put_time(&j, "started", started_ms);
	put(&j, ", ");
	put_time(&j, "written", wall_ms());
	put(&j, ", \"arms\": {");
	put_arm(&j, SC_ARM_LINGER);
	put(&j, ", ");
	put_arm(&j, SC_ARM_CONTROL);
	put(&j, "}}\n");
	return j.len < size ? j.len : size;
}

/* ---- writing ------------------------------------------------------------ */

/* The template with %p replaced by the pid and %% by %. */
static void expand(char *out, size_t size, long pid)
{
	size_t n = 0;

	for (const char *t = template; *t && n + 24 < size; t++) {
		if (t[0] == '%' && t[1] == 'p') {
			n += (size_t)sc_format(out + n, size - n, "%ld", pid);
			t++;
		} else if (t[0] == '%' && t[1] == '%') {
			out[n++] = '%';
			t++;
		} else {
			out[n++] = *t;
		}
	}
	out[n] = '\0';
}

static void complain(const char *path, int err)
{
	if (__atomic_exchange_n(&complained, 1, __ATOMIC_RELAXED))
		return;
	sc_log_write(SC_LOG_ERROR, "statsfile", "cannot write the stats file %s: %s; "
		     "the program runs on without it", path, strerrorname_np(err));
}

static bool write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		long n = raw_syscall(SYS_write, fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

static void write_with(struct json_room *room)
{
	char path[PATH_ROOM], temp[PATH_ROOM + 32], *json = room->text;
	int saved_errno = errno;

	if (!enabled || !sc_self() || __atomic_exchange_n(&room->busy, 1, __ATOMIC_ACQUIRE))
		return;
	long pid = raw_syscall(SYS_getpid);
	expand(path, sizeof path, pid);
	/* One temporary file per thread: two writers never share one. */
	sc_format(temp, sizeof temp, "%s.tmp.%ld", path, raw_syscall(SYS_gettid));
	size_t len = statsfile_format(json, JSON_ROOM);
	int fd = (int)raw_syscall(SYS_openat, AT_FDCWD, temp,
				  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	bool ok = fd >= 0;
	if (ok) {
		ok = write_all(fd, json, len);
		raw_syscall(SYS_close, fd);
		ok = ok && raw_syscall(SYS_renameat, AT_FDCWD, temp, AT_FDCWD, path) == 0;
		if (!ok) {
			int e = errno;
			raw_syscall(SYS_unlinkat, AT_FDCWD, temp, 0);
			errno = e;
		}
	}
	__atomic_store_n(&room->busy, 0, __ATOMIC_RELEASE);
	if (!ok)
		complain(path, errno);
	errno = saved_errno;
}

/* The final write (exit, exec) is the file's last word: no periodic one
 * starts after it, and one under way elsewhere (the shim's thread, which
 * exit_group would kill between its write and its rename, leaving its
 * temporary file, or whose rename would put older counts over the final
 * ones) is let finish first. Bounded: a periodic write this very thread
 * was interrupted in (a signal handler calling _exit) cannot finish. */
#define PERIODIC_WAIT_MS 200

void statsfile_write(void)
{
	uint64_t due = __atomic_exchange_n(&next_due_ms, 0, __ATOMIC_RELAXED);

	if (due)
		__atomic_store_n(&paused_due_ms, due, __ATOMIC_RELAXED);
	for (int i = 0; i < PERIODIC_WAIT_MS && __atomic_load_n(&periodic_room.busy, __ATOMIC_ACQUIRE);
	     i++)
		raw_sleep_ms(1);
	write_with(&final_room);
}

void statsfile_resume(void)
{
	/* Looked at first: a vfork child's failed exec writes nothing. */
	if (!__atomic_load_n(&paused_due_ms, __ATOMIC_RELAXED))
		return;
	__atomic_store_n(&next_due_ms, __atomic_exchange_n(&paused_due_ms, 0, __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
}

void statsfile_due(void)
{
	uint64_t due = __atomic_load_n(&next_due_ms, __ATOMIC_RELAXED);

	if (!due)
		return;
	uint64_t now = sc_now_ms();
	/* One writer per interval: the one that moves the deadline on. */
	if (now < due || !__atomic_compare_exchange_n(&next_due_ms, &due,
						      now + (uint64_t)interval_ms, false,
						      __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	write_with(&periodic_room);
}
