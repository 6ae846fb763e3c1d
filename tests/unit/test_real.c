/* test_real.c: before the real functions are resolved (a call that comes
 * before the shim's constructor), the raw-syscall stand-ins behave exactly
 * like libc: same results, same errno, never a faked success. */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "loopback.h"
#include "real.h"

static void stand_ins_work_before_resolution(void **state)
{
	(void)state;
	int p[2];

	assert_null(real.fork); /* nothing resolved yet */
	assert_int_equal(pipe(p), 0);
	int copy = real.dup(p[0]);
	assert_true(copy > p[1]);
	assert_int_equal(real.dup2(copy, copy), copy);
	assert_int_equal(real.dup3(p[0], copy, O_CLOEXEC), copy);
	assert_int_equal(real.fcntl(copy, F_GETFD), FD_CLOEXEC);
	int high = real.fcntl(copy, F_DUPFD_CLOEXEC, 500);
	assert_true(high >= 500);
	assert_int_equal(real.close(high), 0);
	assert_int_equal(real.close(copy), 0);

	errno = 0;
	assert_int_equal(real.close(copy), -1);
	assert_int_equal(errno, EBADF);
	errno = 0;
	assert_int_equal(real.dup2(copy, copy), -1);
	assert_int_equal(errno, EBADF);
	errno = 0;
	assert_int_equal(real.accept4(p[0], NULL, NULL, 0), -1);
	assert_int_equal(errno, ENOTSOCK);
	int s = real.socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	assert_int_equal(real.close(s), 0);
	close(p[0]);
	close(p[1]);
}

static void resolution_binds_libc(void **state)
{
	(void)state;
	real_resolve();
	real_resolve(); /* idempotent */
	assert_ptr_equal(real.close, dlsym(RTLD_NEXT, "close"));
	assert_ptr_equal(real.fork, dlsym(RTLD_NEXT, "fork"));
	assert_ptr_equal(real.fcntl64, dlsym(RTLD_NEXT, "fcntl64"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stand_ins_work_before_resolution),
		cmocka_unit_test(resolution_binds_libc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
