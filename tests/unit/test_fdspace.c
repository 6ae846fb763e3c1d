/* test_fdspace.c: the lazily committed tables (fdspace_table): mapping one
 * adds nothing to VmData (what vm.overcommit_memory=2 charges), each entry
 * asked for commits only its chunk, an entry that straddles two chunks gets
 * both, and an index past the table is NULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fdspace.h"

/* Read without stdio: a FILE's buffer would be a mapping of its own (under
 * ASan surely), counted in what is measured. */
static long vm_data_kb(void)
{
	char text[4096];
	int fd = open("/proc/self/status", O_RDONLY);

	assert_true(fd >= 0);
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	assert_true(n > 0);
	text[n] = '\0';
	const char *at = strstr(text, "VmData:");
	assert_non_null(at);
	return strtol(at + strlen("VmData:"), NULL, 10);
}

static void only_the_chunks_asked_for_are_committed(void **state)
{
	(void)state;
	static struct fdspace_table t;
	long start = vm_data_kb();

	assert_false(fdspace_table_mapped(&t));
	assert_true(fdspace_table_map(&t, 1u << 20, 16)); /* 16 MiB of entries */
	assert_true(fdspace_table_mapped(&t));
	assert_int_equal(vm_data_kb(), start);
	uint64_t *a = fdspace_entry(&t, 3), *b = fdspace_entry(&t, 100000);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a[0] | a[1] | b[0] | b[1], 0);
	a[1] = b[1] = 42; /* writable */
	assert_int_equal(vm_data_kb(), start + 2 * (long)(FDSPACE_CHUNK / 1024));
	assert_ptr_equal(fdspace_entry(&t, 3), a);
	assert_int_equal(vm_data_kb(), start + 2 * (long)(FDSPACE_CHUNK / 1024));
	assert_null(fdspace_entry(&t, 1u << 20));
	/* A second map of the same table keeps the first. */
	assert_true(fdspace_table_map(&t, 1u << 20, 16));
	assert_ptr_equal(fdspace_entry(&t, 3), a);
}

static void an_entry_across_two_chunks_gets_both(void **state)
{
	(void)state;
	static struct fdspace_table t;

	assert_true(fdspace_table_map(&t, 100000, 36));
	uint32_t i = FDSPACE_CHUNK / 36; /* starts in chunk 0, ends in chunk 1 */
	assert_true(i * 36 < FDSPACE_CHUNK && (i + 1) * 36 > FDSPACE_CHUNK);
	unsigned char *e = fdspace_entry(&t, i);
	assert_non_null(e);
	memset(e, 0xff, 36);
	assert_int_equal(e[35], 0xff);
}

static void sizes_beyond_the_bounds_are_refused(void **state)
{
	(void)state;
	static struct fdspace_table t;

	assert_false(fdspace_table_map(&t, 16, 65));
	assert_false(fdspace_table_map(&t, (1u << 20) + 1, 16));
	assert_null(fdspace_entry(&t, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(only_the_chunks_asked_for_are_committed),
		cmocka_unit_test(an_entry_across_two_chunks_gets_both),
		cmocka_unit_test(sizes_beyond_the_bounds_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
