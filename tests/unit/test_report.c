/* test_report.c: `safeclose report`'s summing (cmd/report.c) when memory
 * runs out: *out is set either way, as report.h says, so the caller's
 * report_free() never frees a pointer nobody set (found by clang's
 * analyzer, make lint). calloc is wrapped (-Wl,--wrap=calloc) to fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "../../cmd/report.h"

static bool calloc_fails;

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size)
{
	return calloc_fails ? NULL : __real_calloc(n, size);
}

static void out_is_set_when_calloc_fails(void **state)
{
	(void)state;
	struct totals *t = (struct totals *)&calloc_fails; /* anything but NULL */
	char *paths[] = { "/nonexistent" };

	calloc_fails = true;
	bool ok = report_sum(&t, paths, 1);
	calloc_fails = false;
	assert_false(ok);
	assert_null(t);
	report_free(t);
}

static void out_is_set_when_a_path_cannot_be_read(void **state)
{
	(void)state;
	struct totals *t = NULL;
	char *paths[] = { "/nonexistent/stats.1.json" };

	assert_false(report_sum(&t, paths, 1));
	assert_non_null(t);
	report_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(out_is_set_when_calloc_fails),
		cmocka_unit_test(out_is_set_when_a_path_cannot_be_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
