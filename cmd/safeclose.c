/* safeclose.c: the safeclose command: runs a program with libsafeclose
 * preloaded, the way faketime runs one with libfaketime.
 *
 *   safeclose [--mode M] [--conf FILE] [--check] [--] PROGRAM ARGS...
 *
 * It adds the library to LD_PRELOAD (keeping what is there), turns its own
 * options into the settings' environment variables, and execs the program,
 * so pid, signals and exit status are the program's. The settings are the
 * library's own (conf/safeclose.conf, SAFECLOSE_*), read by the same parser
 * (linked from the shim's core objects); --check only validates them.
 * Subcommands (a first argument that is a word, like `report`) and options
 * that map to further settings slot into the two tables below. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shim/conffile.h"
#include "../shim/config.h"

#ifndef SC_LIBDIR
#define SC_LIBDIR "/usr/local/lib"
#endif
#ifndef SC_VERSION
#define SC_VERSION "0"
#endif
#define LIBRARY "libsafeclose.so"

extern char **environ;

/* Options that set a setting for the program: the option's value becomes
 * the variable's, checked first, like the variable's, by the settings table. */
static const struct setting_option {
	const char *name;
	const char *env;
} setting_options[] = {
	{ "mode", "SAFECLOSE_MODE" },
	{ "conf", SC_CONF_ENV },
};
#define N_SETTING_OPTIONS (sizeof setting_options / sizeof setting_options[0])

enum { OPT_CHECK = 256, OPT_HELP, OPT_VERSION, OPT_SETTING /* + index */ };

static void usage(FILE *to)
{
	fprintf(to, "usage: safeclose [--mode off|pending|always] [--conf FILE] [--] PROGRAM [ARGS...]\n"
		    "       safeclose --check [--mode M] [--conf FILE]\n"
		    "Runs PROGRAM with libsafeclose preloaded: its TCP connections end with a\n"
		    "lingering close instead of a reset. Settings: safeclose.conf (--conf FILE,\n"
		    "$SAFECLOSE_CONF or " SC_CONF_DEFAULT ") and SAFECLOSE_* variables; see\n"
		    "safeclose(1) and libsafeclose(7). --check prints the settings PROGRAM would\n"
		    "get and exits 1 if any is bad.\n");
}

/* The directory of this executable, "" when it cannot be known. */
static void own_dir(char *dir, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", dir, size - 1);

	dir[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
}

/* The library: beside this executable (the build tree), at the path it was
 * installed to, or in lib/safeclose beside its bin/ (an install moved
 * elsewhere as a whole). The path LD_PRELOAD gets is absolute and plain. */
static bool find_library(char *path, size_t size)
{
	char dir[PATH_MAX], guess[PATH_MAX + 64], moved[PATH_MAX + 32];

	own_dir(dir, sizeof dir);
	const char *guesses[] = { *dir ? dir : NULL, SC_LIBDIR "/safeclose", NULL };
	if (*dir) {
		snprintf(moved, sizeof moved, "%s/../lib/safeclose", dir);
		guesses[2] = moved;
	}
	for (unsigned i = 0; i < sizeof guesses / sizeof *guesses; i++) {
		if (!guesses[i])
			continue;
		snprintf(guess, sizeof guess, "%s/" LIBRARY, guesses[i]);
		if (access(guess, R_OK) == 0 && realpath(guess, path))
			return true;
	}
	snprintf(path, size, "%s/safeclose/" LIBRARY, SC_LIBDIR);
	return false;
}

static bool is_safeclose_library(const char *element, size_t len)
{
	size_t n = strlen(LIBRARY);

	return len >= n && strncmp(element + len - n, LIBRARY, n) == 0 &&
	       (len == n || element[len - n - 1] == '/');
}

/* LD_PRELOAD as it was (its libraries in order, any other copy of ours
 * left out so the shim is never loaded twice), then the library. */
static int add_to_preload(const char *library)
{
	const char *old = getenv("LD_PRELOAD");
	size_t size = (old ? strlen(old) : 0) + strlen(library) + 2, len = 0;
	char *value = malloc(size);

	if (!value)
		return -1;
	for (const char *p = old; p && *p;) {
		size_t n = strcspn(p, " :");
		if (n && !is_safeclose_library(p, n)) {
			memcpy(value + len, p, n);
			len += n;
			value[len++] = ':';
		}
		p += n + (p[n] != '\0');
	}
	strcpy(value + len, library);
	int rc = setenv("LD_PRELOAD", value, 1);
	free(value);
	return rc;
}

static const struct sc_setting *setting_named(const char *env)
{
	for (unsigned i = 0; i < sc_settings_count; i++)
		if (strcmp(sc_settings[i].env, env) == 0)
			return &sc_settings[i];
	return NULL;
}

/* A setting given as an option: checked at once (a typo on the command line
 * is the caller's to fix, unlike one in the file, which the library reports
 * and runs on), then passed on in the environment. */
static bool set_option(const struct setting_option *o, const char *value)
{
	const struct sc_setting *s = setting_named(o->env);
	struct sc_config scratch;
	char valid[160], abs[PATH_MAX];

	sc_config_defaults(&scratch);
	if (s && !sc_setting_set(&scratch, s, value)) {
		sc_setting_describe(s, valid, sizeof valid);
		fprintf(stderr, "safeclose: --%s '%s' is not %s\n", o->name, value, valid);
		return false;
	}
	if (!s && *value != '/' && getcwd(abs, sizeof abs - strlen(value) - 1)) {
		strcat(strcat(abs, "/"), value); /* a file, for a program that may chdir */
		value = abs;
	}
	return setenv(o->env, value, 1) == 0;
}

/* What the program would get: every setting as a conf line, after the
 * library's own report of anything bad. */
static int check(const char *library, bool found)
{
	struct sc_config cfg;
	int problems = sc_settings_load(&cfg, environ);
	char key[64], buf[32];
	bool named;
	const char *conf = sc_conf_path(environ, &named);

	if (!found) {
		fprintf(stderr, "safeclose: %s not found (looked beside this program and in %s/safeclose)\n",
			LIBRARY, SC_LIBDIR);
		problems++;
	}
	printf("# library: %s\n# conf: %s%s\n", library, conf,
	       named || access(conf, F_OK) == 0 ? "" : " (none)");
	for (unsigned i = 0; i < sc_settings_count; i++)
		printf("%s = %s\n", sc_setting_key(&sc_settings[i], key, sizeof key),
		       sc_setting_current(&cfg, &sc_settings[i], buf, sizeof buf));
	return problems ? 1 : 0;
}

static int run(char **argv, const char *library)
{
	if (add_to_preload(library) != 0) {
		perror("safeclose: LD_PRELOAD");
		return 125;
	}
	execvp(argv[0], argv);
	int err = errno;
	fprintf(stderr, "safeclose: %s: %s\n", argv[0], strerror(err));
	return err == ENOENT ? 127 : 126; /* as env(1) and the shells */
}

int main(int argc, char **argv)
{
	struct option longopts[N_SETTING_OPTIONS + 4] = {
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
	};
	for (unsigned i = 0; i < N_SETTING_OPTIONS; i++)
		longopts[3 + i] = (struct option){ setting_options[i].name, required_argument,
						   NULL, OPT_SETTING + (int)i };
	bool check_only = false;
	int c;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		if (c >= OPT_SETTING) {
			if (!set_option(&setting_options[c - OPT_SETTING], optarg))
				return 2;
		} else if (c == OPT_CHECK) {
			check_only = true;
		} else if (c == OPT_HELP || c == 'h') {
			usage(stdout);
			return 0;
		} else if (c == OPT_VERSION) {
			printf("safeclose %s\n", SC_VERSION);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	char library[PATH_MAX];
	bool found = find_library(library, sizeof library);

	if (check_only)
		return check(library, found);
	if (optind == argc) {
		usage(stderr);
		return 2;
	}
	if (!found) {
		fprintf(stderr, "safeclose: %s not found (looked beside this program and in %s/safeclose)\n",
			LIBRARY, SC_LIBDIR);
		return 127;
	}
	return run(argv + optind, library);
}
