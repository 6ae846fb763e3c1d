/* test_conffile.c: the settings file: its lines taken, each kind of bad
 * line reported once with file and line number and the value used instead,
 * the environment over the file, and unknown names with the closest setting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <ctype.h>

#include "conffile.h"
#include "log.h"

/* Runs fn(arg) with stderr captured into err; returns fn's result. */
static int capturing(int (*fn)(void *), void *arg, char *err, size_t size)
{
	int pipefd[2], saved = dup(2);

	assert_int_equal(pipe(pipefd), 0);
	dup2(pipefd[1], 2);
	int result = fn(arg);
	dup2(saved, 2);
	close(saved);
	close(pipefd[1]);
	ssize_t n = read(pipefd[0], err, size - 1);
	err[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	return result;
}

static int count_lines(const char *s)
{
	int lines = 0;

	for (; *s; s++)
		lines += *s == '\n';
	return lines;
}

struct text_job {
	struct sc_config *cfg;
	const char *text;
};

static int apply_text(void *arg)
{
	struct text_job *job = arg;
	char copy[4096];
	size_t len = strlen(job->text);

	memcpy(copy, job->text, len + 1);
	sc_config_defaults(job->cfg);
	return sc_conf_apply_text(job->cfg, "/etc/safeclose.conf", copy, len);
}

struct load_job {
	struct sc_config *cfg;
	char *const *envp;
};

static int load(void *arg)
{
	struct load_job *job = arg;

	return sc_settings_load(job->cfg, job->envp);
}

/* A file holding text, named in path (a template ending in XXXXXX). */
static void write_file(char *path, const char *text)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void lines_are_taken(void **state)
{
	(void)state;
	struct sc_config cfg;
	char err[1024];
	struct text_job job = { &cfg, "# a comment\n\n   \nmode = always\n"
				      "idle_ms=250   # after a blank, a comment\n"
				      "\tlinger_ms =  100\r\nlog = debug" };

	assert_int_equal(capturing(apply_text, &job, err, sizeof err), 0);
	assert_string_equal(err, "");
	assert_int_equal(cfg.mode, SC_MODE_ALWAYS);
	assert_int_equal(cfg.idle_ms, 250);
	assert_int_equal(cfg.linger_ms, 100);
	assert_int_equal(cfg.log_level, SC_LOG_DEBUG);
}

static void each_bad_line_is_one_message_naming_file_and_line(void **state)
{
	(void)state;
	struct sc_config cfg;
	char err[2048];
	struct text_job job = { &cfg, "idle_ms = 250\n"
				      "idle_ms = soon\n"
				      "mode = sometimes\n"
				      "idel_ms = 3\n"
				      "just words\n"
				      "linger_ms =\n" };

	assert_int_equal(capturing(apply_text, &job, err, sizeof err), 5);
	assert_int_equal(count_lines(err), 5);
	assert_non_null(strstr(err, "/etc/safeclose.conf:2: idle_ms: 'soon' is not a number "
				    "of ms (0..3600000), using 250\n"));
	assert_non_null(strstr(err, "/etc/safeclose.conf:3: mode: 'sometimes' is not one of "
				    "off|pending|always|observe, using pending\n"));
	assert_non_null(strstr(err, "/etc/safeclose.conf:4: unknown setting 'idel_ms', "
				    "ignored (the closest is idle_ms)\n"));
	assert_non_null(strstr(err, "/etc/safeclose.conf:5: 'just words' is not a "
				    "'key = value' line, ignored\n"));
	assert_non_null(strstr(err, "/etc/safeclose.conf:6: linger_ms: '' is not"));
	/* A bad value keeps what was there: the default, or an earlier line. */
	assert_int_equal(cfg.idle_ms, 250);
	assert_int_equal(cfg.mode, SC_MODE_PENDING);
	assert_int_equal(cfg.linger_ms, 30000);
}

static void the_environment_overrides_the_file(void **state)
{
	(void)state;
	char path[] = "/tmp/test_conffile.XXXXXX", conf[64], err[2048];
	struct sc_config cfg;

	write_file(path, "idle_ms = 250\nlinger_ms = 100\nmode = always\n");
	snprintf(conf, sizeof conf, "SAFECLOSE_CONF=%s", path);
	char *envp[] = { conf, "SAFECLOSE_IDLE_MS=777", "SAFECLOSE_LINGER_MS=later", NULL };
	struct load_job job = { &cfg, envp };

	assert_int_equal(capturing(load, &job, err, sizeof err), 1);
	unlink(path);
	assert_int_equal(cfg.idle_ms, 777);
	assert_int_equal(cfg.mode, SC_MODE_ALWAYS);
	/* A bad variable keeps the file's value, and says which. */
	assert_int_equal(cfg.linger_ms, 100);
	assert_non_null(strstr(err, "SAFECLOSE_LINGER_MS: 'later' is not a number of ms "
				    "(0..3600000), using 100\n"));
	assert_int_equal(count_lines(err), 1);
}

static void a_named_file_that_is_missing_is_reported(void **state)
{
	(void)state;
	char err[1024];
	struct sc_config cfg;
	char *envp[] = { "SAFECLOSE_CONF=/nonexistent/safeclose.conf", "SAFECLOSE_MODE=off", NULL };
	struct load_job job = { &cfg, envp };

	assert_int_equal(capturing(load, &job, err, sizeof err), 1);
	assert_non_null(strstr(err, "/nonexistent/safeclose.conf: cannot read it (ENOENT), "
				    "using the defaults\n"));
	assert_int_equal(cfg.mode, SC_MODE_OFF);
}

static int apply_missing_default(void *arg)
{
	return sc_conf_apply_file(arg, "/nonexistent/safeclose.conf", false);
}

static void the_default_file_may_be_missing(void **state)
{
	(void)state;
	char err[1024];
	struct sc_config cfg;

	sc_config_defaults(&cfg);
	assert_int_equal(capturing(apply_missing_default, &cfg, err, sizeof err), 0);
	assert_string_equal(err, "");
}

static void the_search_order(void **state)
{
	(void)state;
	bool must;
	char *named[] = { "SAFECLOSE_CONF=/srv/my.conf", NULL };
	char *empty[] = { "SAFECLOSE_CONF=", NULL };
	char *none[] = { "PATH=/bin", NULL };

	assert_string_equal(sc_conf_path(named, &must), "/srv/my.conf");
	assert_true(must);
	assert_string_equal(sc_conf_path(empty, &must), "/etc/safeclose.conf");
	assert_false(must);
	assert_string_equal(sc_conf_path(none, &must), "/etc/safeclose.conf");
	assert_false(must);
	/* A set-user-ID program never reads a file its caller names. */
	assert_string_equal(sc_conf_path_for(named, true, &must), "/etc/safeclose.conf");
	assert_false(must);
	assert_string_equal(sc_conf_path_for(named, false, &must), "/srv/my.conf");
}

static int check_env(void *arg)
{
	return sc_conf_check_env(arg);
}

static void unknown_variables_name_the_closest_setting(void **state)
{
	(void)state;
	char err[2048];
	char *envp[] = { "SAFECLOSE_IDEL_MS=3", "SAFECLOSE_MDOE=off", "SAFECLOSE_EXIT_WAIT=1",
			 "SAFECLOSE_MODE=off", "SAFECLOSE_CONF=/x", "SAFECLOSE_BOOKS=7",
			 "SAFECLOSE_COUNTED=99", "SAFECLOSEX=1", "MY_SAFECLOSE_MODE=1", NULL };

	assert_int_equal(capturing(check_env, envp, err, sizeof err), 3);
	assert_int_equal(count_lines(err), 3);
	assert_non_null(strstr(err, "SAFECLOSE_IDEL_MS is not a setting, ignored (the closest is "
				    "SAFECLOSE_IDLE_MS)\n"));
	assert_non_null(strstr(err, "(the closest is SAFECLOSE_MODE)\n"));
	assert_non_null(strstr(err, "(the closest is SAFECLOSE_EXIT_WAIT_MS)\n"));
}

static void keys_are_the_variables_in_lower_case(void **state)
{
	(void)state;
	char key[64];

	for (unsigned i = 0; i < sc_settings_count; i++) {
		sc_setting_key(&sc_settings[i], key, sizeof key);
		for (unsigned j = 0; key[j]; j++)
			assert_int_equal(key[j], tolower((unsigned char)sc_settings[i].env[10 + j]));
		assert_int_equal(strlen(key) + 10, strlen(sc_settings[i].env));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lines_are_taken),
		cmocka_unit_test(each_bad_line_is_one_message_naming_file_and_line),
		cmocka_unit_test(the_environment_overrides_the_file),
		cmocka_unit_test(a_named_file_that_is_missing_is_reported),
		cmocka_unit_test(the_default_file_may_be_missing),
		cmocka_unit_test(the_search_order),
		cmocka_unit_test(unknown_variables_name_the_closest_setting),
		cmocka_unit_test(keys_are_the_variables_in_lower_case),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
