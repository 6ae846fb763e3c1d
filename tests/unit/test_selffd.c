/* test_selffd.c: the shim's own descriptors: placed high (above the numbers
 * select() needs when the limit allows), marked so the program sees them as
 * not open, and left standing by a bulk close_range() around them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/resource.h>

#include "config.h"
#include "loopback.h"
#include "real.h"
#include "selffd.h"

static int setup(void **state)
{
	(void)state;
	real_resolve();
	return 0;
}

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void moved_high_and_marked(void **state)
{
	(void)state;
	int quota, base = selffd_base(&quota);
	int fd = selffd_move_high(open("/dev/null", O_RDONLY), true);

	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	/* The descriptor budget: a quarter of the limit (MAX_LINGER is soft). */
	assert_true(quota > 0 && (rlim_t)quota <= rl.rlim_cur / 4);
	assert_true(fd >= base);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_true(selffd_owns(fd));
	assert_true(selffd_max() >= fd);
	selffd_close(fd);
	assert_false(selffd_owns(fd));
	assert_false(is_open(fd));
	assert_int_equal(selffd_move_high(-1, true), -1);
}

static void bulk_close_goes_around(void **state)
{
	(void)state;
	int mine = selffd_move_high(open("/dev/null", O_RDONLY), false);
	int theirs[3];

	assert_false(fcntl(mine, F_GETFD) & FD_CLOEXEC);
	for (int i = 0; i < 3; i++)
		theirs[i] = fcntl(mine, F_DUPFD, mine - 1 + 2 * i); /* below, above, above */
	assert_true(theirs[0] < mine && theirs[1] > mine);
	assert_int_equal(selffd_close_range_around(3, ~0u, 0), 0);
	assert_true(is_open(mine));
	for (int i = 0; i < 3; i++)
		assert_false(is_open(theirs[i]));
	assert_true(is_open(0) && is_open(1) && is_open(2));
	selffd_close(mine);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(moved_high_and_marked),
		cmocka_unit_test(bulk_close_goes_around),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
