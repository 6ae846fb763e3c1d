/* log.c: owns the log output: an async-signal-safe printf subset and the
 * single write(2) per line, prefixed with the pid and the function, never
 * into a socket. errno is left as the caller had it. */
#include "log.h"
#include "rawsys.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int sc_log_level = SC_LOG_ERROR;

struct out {
	char *buf;
	size_t size, len;
};

static void put_char(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_str(struct out *o, const char *s)
{
	for (s = s ? s : "(null)"; *s; s++)
		put_char(o, *s);
}

static void put_unsigned(struct out *o, unsigned long long v, unsigned base)
{
	char digits[24];
	int n = 0;

	do {
		digits[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		put_char(o, digits[--n]);
}

static void put_signed(struct out *o, long long v)
{
	if (v < 0) {
		put_char(o, '-');
		put_unsigned(o, 0ull - (unsigned long long)v, 10);
	} else {
		put_unsigned(o, (unsigned long long)v, 10);
	}
}

/* Reads one integer argument of the given length ('i' int, 'l' long,
 * 'L' long long, 'z' size_t). */
static unsigned long long arg_unsigned(va_list *ap, char len)
{
	switch (len) {
	case 'l': return va_arg(*ap, unsigned long);
	case 'L': return va_arg(*ap, unsigned long long);
	case 'z': return va_arg(*ap, size_t);
	default: return va_arg(*ap, unsigned int);
	}
}

static long long arg_signed(va_list *ap, char len)
{
	switch (len) {
	case 'l': return va_arg(*ap, long);
	case 'L': return va_arg(*ap, long long);
	case 'z': return (long long)va_arg(*ap, size_t);
	default: return va_arg(*ap, int);
	}
}

int sc_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };
	va_list args;

	va_copy(args, ap);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put_char(&o, *fmt);
			continue;
		}
		char len = 'i';
		if (fmt[1] == 'l' && fmt[2] == 'l') {
			len = 'L';
			fmt += 2;
		} else if (fmt[1] == 'l' || fmt[1] == 'z') {
			len = fmt[1];
			fmt++;
		}
		switch (*++fmt) {
		case 's': put_str(&o, va_arg(args, const char *)); break;
		case 'c': put_char(&o, (char)va_arg(args, int)); break;
		case 'd':
		case 'i': put_signed(&o, arg_signed(&args, len)); break;
		case 'u': put_unsigned(&o, arg_unsigned(&args, len), 10); break;
		case 'x': put_unsigned(&o, arg_unsigned(&args, len), 16); break;
		case '%': put_char(&o, '%'); break;
		case '\0': fmt--; break;
		default: put_char(&o, '?'); break;
		}
	}
	va_end(args);
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int sc_format(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = sc_vformat(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

/* Under an inetd-style spawner descriptor 2 can be the client's connection:
 * a line written there would be part of the program's reply. Asked for every
 * line (logging is rare): the program may move its descriptors at any time. */
static bool stderr_is_socket(void)
{
	int type;
	socklen_t len = sizeof type;

	return getsockopt(STDERR_FILENO, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
}

static const char *const level_names[] = { "error", "info", "debug" };

void sc_log_write(int level, const char *func, const char *fmt, ...)
{
	int saved_errno = errno;
	char line[512];
	size_t n = (size_t)sc_format(line, sizeof line, "safeclose[%d] %s %s: ",
				      (int)getpid(), level_names[level], func);
	va_list ap;

	if (n >= sizeof line)
		n = sizeof line - 1;
	va_start(ap, fmt);
	n += (size_t)sc_vformat(line + n, sizeof line - n, fmt, ap);
	va_end(ap);
	if (n >= sizeof line - 1)
		n = sizeof line - 2;
	line[n++] = '\n';
	if (!stderr_is_socket()) {
		/* Raw: write() is a cancellation point, and this may run in close(). */
		raw_syscall(SYS_write, STDERR_FILENO, line, n);
	}
	errno = saved_errno;
}
