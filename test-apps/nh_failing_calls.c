/* nh_failing_calls.c: calls that fail must not act. dup3() and close_range()
 * refused by the kernel (bad flags, dup3 onto itself, close_range with first
 * above last) leave their target open and untouched: each case, on a fresh
 * connection with unread input, prints the call's result, then whether the
 * target still writes and what its peer receives. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "tcp_pair.h"

enum call { DUP3_BAD_FLAGS, DUP3_SAME_FD, DUP3_BAD_OLDFD, RANGE_BAD_FLAGS, RANGE_REVERSED };

static const char *const names[] = {
	"dup3(other, s, bad flags)", "dup3(s, s, 0)", "dup3(not open, s, 0)",
	"close_range(s, s, bad flags)", "close_range(s + 1, s, 0)",
};

static int failing_call(enum call c, int s, int other)
{
	switch (c) {
	case DUP3_BAD_FLAGS: return dup3(other, s, 0x4000);
	case DUP3_SAME_FD: return dup3(s, s, 0);
	case DUP3_BAD_OLDFD: return dup3(4000, s, 0);
	case RANGE_BAD_FLAGS: return close_range((unsigned)s, (unsigned)s, 0x40);
	default: return close_range((unsigned)s + 1, (unsigned)s, 0);
	}
}

static void one_case(enum call c)
{
	int client, other = open("/dev/null", O_RDONLY);
	int s = tcp_pair(&client);
	char buf[64];

	errno = 0;
	int r = failing_call(c, s, other);
	printf("%s: %d %s\n", names[c], r, r < 0 ? strerrorname_np(errno) : "ok");
	ssize_t w = write(s, "REPLY\n", 6);
	printf("  write(s) after it: %zd %s\n", w, w < 0 ? strerrorname_np(errno) : "ok");
	printf("  peer received: %s\n", pair_received(client, 300, buf, sizeof buf));
	close(s);
	close(client);
	close(other);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (enum call c = DUP3_BAD_FLAGS; c <= RANGE_REVERSED; c++)
		one_case(c);
	return 0;
}
