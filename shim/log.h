/* log.h: the shim's one log macro. Lines go to stderr with one write(2)
 * (dropped when descriptor 2 is a socket: it may be a client's connection),
 * formatted by a small async-signal-safe formatter (no stdio, no malloc),
 * because the close path may run in a signal handler. */
#ifndef SAFECLOSE_LOG_H
#define SAFECLOSE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum sc_log_level { SC_LOG_ERROR = 0, SC_LOG_INFO = 1, SC_LOG_DEBUG = 2 };

extern int sc_log_level;

/* Supports %s %c %d %i %u %x with the l, ll and z length modifiers, and %%. */
void sc_log_write(int level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int sc_vformat(char *buf, size_t size, const char *fmt, va_list ap);
int sc_format(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define SC_LOG(level, ...)                                          \
	do {                                                        \
		if ((level) <= sc_log_level)                        \
			sc_log_write((level), __func__, __VA_ARGS__); \
	} while (0)

#endif
