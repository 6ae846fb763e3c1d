/* test_config.c: settings parsing: defaults, valid values, and the one-line
 * report of a bad value (which names the variable, the value and the default
 * used instead). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "log.h"

static const char *const *fake_env;

static const char *fake_get(const char *name)
{
	size_t n = strlen(name);

	for (const char *const *e = fake_env; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* Loads cfg from `env`, capturing what the loader writes to stderr. */
static int load_capturing(struct sc_config *cfg, const char *const *env, char *err, size_t size)
{
	int pipefd[2], saved = dup(2);

	assert_int_equal(pipe(pipefd), 0);
	dup2(pipefd[1], 2);
	fake_env = env;
	int bad = sc_config_load(cfg, fake_get);
	dup2(saved, 2);
	close(saved);
	close(pipefd[1]);
	ssize_t n = read(pipefd[0], err, size - 1);
	err[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	return bad;
}

static void defaults_when_nothing_set(void **state)
{
	(void)state;
	struct sc_config cfg;
	char err[1024];

	assert_int_equal(load_capturing(&cfg, NULL, err, sizeof err), 0);
	assert_int_equal(cfg.mode, SC_MODE_PENDING);
	assert_int_equal(cfg.linger_ms, 30000);
	assert_int_equal(cfg.idle_ms, 5000);
	assert_int_equal(cfg.log_level, SC_LOG_ERROR);
	assert_string_equal(err, "");
}

static void valid_values_are_taken(void **state)
{
	(void)state;
	const char *env[] = { "SAFECLOSE_MODE=always", "SAFECLOSE_LINGER_MS=0",
			      "SAFECLOSE_IDLE_MS=3600000", "SAFECLOSE_LOG=debug", NULL };
	struct sc_config cfg;
	char err[1024];

	assert_int_equal(load_capturing(&cfg, env, err, sizeof err), 0);
	assert_int_equal(cfg.mode, SC_MODE_ALWAYS);
	assert_int_equal(cfg.linger_ms, 0);
	assert_int_equal(cfg.idle_ms, 3600000);
	assert_int_equal(cfg.log_level, SC_LOG_DEBUG);
	assert_string_equal(err, "");
}

static void observe_split_and_stats_settings(void **state)
{
	(void)state;
	const char *env[] = { "SAFECLOSE_MODE=observe", "SAFECLOSE_AB=50",
			      "SAFECLOSE_STATS=/tmp/stats.%p.json",
			      "SAFECLOSE_STATS_INTERVAL_MS=250", NULL };
	const char *bad[] = { "SAFECLOSE_AB=101", "SAFECLOSE_STATS=", NULL };
	struct sc_config cfg;
	char err[1024];

	assert_int_equal(load_capturing(&cfg, env, err, sizeof err), 0);
	assert_int_equal(cfg.mode, SC_MODE_OBSERVE);
	assert_int_equal(cfg.ab_percent, 50);
	assert_string_equal(cfg.stats_path, "/tmp/stats.%p.json");
	assert_int_equal(cfg.stats_interval_ms, 250);
	assert_int_equal(load_capturing(&cfg, bad, err, sizeof err), 1);
	assert_int_equal(cfg.ab_percent, 100);
	assert_null(cfg.stats_path); /* empty: no file */
	assert_int_equal(cfg.stats_interval_ms, 10000);
	assert_non_null(strstr(err, "SAFECLOSE_AB: '101' is not a number of % (0..100), using 100\n"));
}

static void bad_values_fall_back_with_one_line_each(void **state)
{
	(void)state;
	const char *env[] = { "SAFECLOSE_MODE=sometimes", "SAFECLOSE_LINGER_MS=12x",
			      "SAFECLOSE_IDLE_MS=-1", "SAFECLOSE_LOG=", NULL };
	struct sc_config cfg;
	char err[2048];

	assert_int_equal(load_capturing(&cfg, env, err, sizeof err), 4);
	assert_int_equal(cfg.mode, SC_MODE_PENDING);
	assert_int_equal(cfg.linger_ms, 30000);
	assert_int_equal(cfg.idle_ms, 5000);
	assert_int_equal(cfg.log_level, SC_LOG_ERROR);
	assert_non_null(strstr(err, "SAFECLOSE_MODE: 'sometimes' is not one of "
				    "off|pending|always|observe, using pending\n"));
	assert_non_null(strstr(err, "SAFECLOSE_LINGER_MS: '12x' is not a number of ms "
				    "(0..3600000), using 30000\n"));
	assert_non_null(strstr(err, "SAFECLOSE_IDLE_MS: '-1' is not a number of ms "
				    "(0..3600000), using 5000\n"));
	assert_non_null(strstr(err, "SAFECLOSE_LOG: '' is not one of error|info|debug, "
				    "using error\n"));
	int lines = 0;
	for (const char *p = err; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 4);
}

static void numbers_are_strict(void **state)
{
	(void)state;
	const struct sc_setting *linger = NULL;
	long v;

	for (unsigned i = 0; i < sc_settings_count; i++)
		if (strcmp(sc_settings[i].env, "SAFECLOSE_LINGER_MS") == 0)
			linger = &sc_settings[i];
	assert_non_null(linger);
	const char *rejected[] = { "", " 5", "5 ", "1e3", "0x10", "3600001",
				   "99999999999999999999", "-0x1" };
	for (unsigned i = 0; i < sizeof rejected / sizeof *rejected; i++)
		assert_false(sc_setting_parse(linger, rejected[i], &v));
	assert_true(sc_setting_parse(linger, "3600000", &v));
	assert_int_equal(v, 3600000);
	assert_true(sc_setting_parse(linger, "0", &v));
	assert_int_equal(v, 0);
}

static void every_setting_has_a_valid_default(void **state)
{
	(void)state;
	for (unsigned i = 0; i < sc_settings_count; i++) {
		const struct sc_setting *s = &sc_settings[i];
		assert_true(s->def >= s->min && s->def <= s->max);
		assert_non_null(s->help);
		assert_int_equal(strncmp(s->env, "SAFECLOSE_", 10), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_when_nothing_set),
		cmocka_unit_test(valid_values_are_taken),
		cmocka_unit_test(bad_values_fall_back_with_one_line_each),
		cmocka_unit_test(numbers_are_strict),
		cmocka_unit_test(observe_split_and_stats_settings),
		cmocka_unit_test(every_setting_has_a_valid_default),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
