/* conffile.c: owns the settings file (conf/safeclose.conf): where it is
 * looked for, reading its `key = value` lines, the one-line report of a bad
 * or unknown one, and the order of the start-up load (defaults, file,
 * environment). Free of hook code so it can be unit-tested directly; it
 * reads a file, so only the constructor and the safeclose command run it. */
#include "conffile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>

#include "log.h"
#include "ownership.h"
#include "rawsys.h"

#define PREFIX "SAFECLOSE_"
#define PREFIX_LEN (sizeof PREFIX - 1)
#define CONF_MAX 65536 /* bytes of the file read; a settings file is a few KiB */

/* Variables that are not settings but are expected in the environment. */
static const char *const own_names[] = { SC_CONF_ENV, SC_BOOKS_ENV, SC_COUNTED_ENV, NULL };

static char *const *lookup_env;

static const char *env_value(const char *name)
{
	size_t n = strlen(name);

	for (char *const *e = lookup_env; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

const char *sc_setting_key(const struct sc_setting *s, char *buf, size_t size)
{
	size_t i = 0;

	for (const char *p = s->env + PREFIX_LEN; *p && i + 1 < size; p++)
		buf[i++] = (char)tolower((unsigned char)*p);
	buf[i] = '\0';
	return buf;
}

static bool same_letter(char a, char b)
{
	return tolower((unsigned char)a) == tolower((unsigned char)b);
}

/* Edit distance (insert, delete, replace, swap two neighbours) between a
 * and each prefix of b (its first j letters, j = 0..lb): into last[j]. One
 * table gives them all, as each of its cells depends only on the letters
 * before it. */
static void distances(const char *a, const char *b, unsigned lb, unsigned last[64])
{
	unsigned char d[64][64];
	unsigned la = (unsigned)strnlen(a, 63);

	lb = lb > 63 ? 63 : lb;
	for (unsigned i = 0; i <= la; i++)
		d[i][0] = (unsigned char)i;
	for (unsigned j = 0; j <= lb; j++)
		d[0][j] = (unsigned char)j;
	for (unsigned i = 1; i <= la; i++)
		for (unsigned j = 1; j <= lb; j++) {
			unsigned best = d[i - 1][j - 1] + !same_letter(a[i - 1], b[j - 1]);
			if (d[i - 1][j] + 1u < best)
				best = d[i - 1][j] + 1u;
			if (d[i][j - 1] + 1u < best)
				best = d[i][j - 1] + 1u;
			if (i > 1 && j > 1 && same_letter(a[i - 1], b[j - 2]) &&
			    same_letter(a[i - 2], b[j - 1]) && d[i - 2][j - 2] + 1u < best)
				best = d[i - 2][j - 2] + 1u;
			d[i][j] = (unsigned char)best;
		}
	for (unsigned j = 0; j <= lb; j++)
		last[j] = d[la][j];
}

/* How far name is from known, or from its first words plus one (a name
 * with its unit left off, like SAFECLOSE_IDLE, is close to SAFECLOSE_IDLE_MS). */
static unsigned name_distance(const char *name, const char *known)
{
	unsigned d[64], len = 0;

	while (len < 63 && known[len])
		len++;
	distances(name, known, len, d);
	unsigned best = d[len];
	for (unsigned j = 1; j < len; j++)
		if (known[j] == '_' && d[j] + 1 < best)
			best = d[j] + 1;
	return best;
}

static const struct sc_setting *closest_setting(const char *name, bool as_key)
{
	const struct sc_setting *best = &sc_settings[0];
	unsigned best_d = ~0u;
	char key[64];

	for (unsigned i = 0; i < sc_settings_count; i++) {
		const char *known = as_key ? sc_setting_key(&sc_settings[i], key, sizeof key)
					   : sc_settings[i].env;
		unsigned d = name_distance(name, known);
		if (d < best_d) {
			best_d = d;
			best = &sc_settings[i];
		}
	}
	return best;
}

static const struct sc_setting *setting_of_key(const char *key)
{
	char known[64];

	for (unsigned i = 0; i < sc_settings_count; i++)
		if (strcmp(sc_setting_key(&sc_settings[i], known, sizeof known), key) == 0)
			return &sc_settings[i];
	return NULL;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* A comment runs from a '#' at the start or after a blank to the line's end. */
static void cut_comment(char *line)
{
	for (char *p = line; *p; p++)
		if (*p == '#' && (p == line || p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			return;
		}
}

static int apply_line(struct sc_config *cfg, const char *path, unsigned lineno, char *line)
{
	cut_comment(line);
	line = trim(line);
	if (!*line)
		return 0;
	char *eq = strchr(line, '=');
	if (!eq) {
		sc_log_write(SC_LOG_ERROR, "config", "%s:%u: '%s' is not a 'key = value' line, ignored",
			     path, lineno, line);
		return 1;
	}
	*eq = '\0';
	char *key = trim(line), *text = trim(eq + 1);
	const struct sc_setting *s = setting_of_key(key);
	if (!s) {
		char near[64];
		sc_log_write(SC_LOG_ERROR, "config",
			     "%s:%u: unknown setting '%s', ignored (the closest is %s)", path, lineno,
			     key, sc_setting_key(closest_setting(key, true), near, sizeof near));
		return 1;
	}
	if (sc_setting_set(cfg, s, text))
		return 0;
	char valid[128], kept[24];
	sc_setting_describe(s, valid, sizeof valid);
	sc_log_write(SC_LOG_ERROR, "config", "%s:%u: %s: '%s' is not %s, using %s", path, lineno,
		     key, text, valid, sc_setting_current(cfg, s, kept, sizeof kept));
	return 1;
}

int sc_conf_apply_text(struct sc_config *cfg, const char *path, char *text, size_t len)
{
	int bad = 0;
	unsigned lineno = 1;
	char *line = text, *end = text + len;

	while (line < end) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		char *stop = nl ? nl : end;
		*stop = '\0'; /* text has room for it: len < its size, or a newline */
		bad += apply_line(cfg, path, lineno++, line);
		line = stop + 1;
	}
	return bad;
}

int sc_conf_apply_file(struct sc_config *cfg, const char *path, bool must_exist)
{
	static char text[CONF_MAX + 1];
	int fd = (int)raw_syscall(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC, 0, 0, 0);

	if (fd < 0) {
		if (errno == ENOENT && !must_exist)
			return 0;
		sc_log_write(SC_LOG_ERROR, "config", "%s: cannot read it (%s), using the defaults",
			     path, strerrorname_np(errno));
		return 1;
	}
	size_t len = 0;
	long n;
	while (len < CONF_MAX &&
	       (n = raw_syscall(SYS_read, fd, (long)(text + len), CONF_MAX - len, 0, 0, 0)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
	}
	int read_errno = errno;
	bool failed = n < 0;
	raw_syscall(SYS_close, fd, 0, 0, 0, 0, 0);
	if (failed) {
		sc_log_write(SC_LOG_ERROR, "config", "%s: cannot read it (%s), using the defaults",
			     path, strerrorname_np(read_errno));
		return 1;
	}
	int bad = 0;
	if (len == CONF_MAX) {
		sc_log_write(SC_LOG_ERROR, "config", "%s: longer than %d bytes, the rest ignored",
			     path, CONF_MAX);
		bad++;
	}
	return bad + sc_conf_apply_text(cfg, path, text, len);
}

const char *sc_conf_path_for(char *const *envp, bool secure, bool *must_exist)
{
	lookup_env = envp;
	const char *named = secure ? NULL : env_value(SC_CONF_ENV);

	*must_exist = named && *named;
	return *must_exist ? named : SC_CONF_DEFAULT;
}

/* A set-user-ID program (or one with file capabilities) that loads the
 * library, through /etc/ld.so.preload, must not read a file its caller
 * names: a bad line is echoed to stderr, which would show the caller any
 * file the program can read. */
const char *sc_conf_path(char *const *envp, bool *must_exist)
{
	return sc_conf_path_for(envp, getauxval(AT_SECURE) != 0, must_exist);
}

static bool known_name(const char *name, size_t len)
{
	for (unsigned i = 0; i < sc_settings_count; i++)
		if (strlen(sc_settings[i].env) == len && strncmp(sc_settings[i].env, name, len) == 0)
			return true;
	for (const char *const *o = own_names; *o; o++)
		if (strlen(*o) == len && strncmp(*o, name, len) == 0)
			return true;
	return false;
}

int sc_conf_check_env(char *const *envp)
{
	int unknown = 0;

	for (char *const *e = envp; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
		if (strncmp(*e, PREFIX, PREFIX_LEN) != 0 || known_name(*e, len))
			continue;
		char name[64];
		sc_format(name, sizeof name, "%s", *e);
		name[len < sizeof name ? len : sizeof name - 1] = '\0';
		sc_log_write(SC_LOG_ERROR, "config", "%s is not a setting, ignored (the closest is %s)",
			     name, closest_setting(name, false)->env);
		unknown++;
	}
	return unknown;
}

int sc_settings_load(struct sc_config *cfg, char *const *envp)
{
	bool must_exist;
	const char *path = sc_conf_path(envp, &must_exist);

	sc_config_defaults(cfg);
	int bad = sc_conf_apply_file(cfg, path, must_exist);
	lookup_env = envp;
	bad += sc_config_apply_env(cfg, env_value);
	return bad + sc_conf_check_env(envp);
}
