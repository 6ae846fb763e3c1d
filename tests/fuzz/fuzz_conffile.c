/* fuzz_conffile.c: libFuzzer target for the settings file's parser
 * (shim/conffile.c, sc_conf_apply_text, over shim/config.c's table). The
 * input is the file's text, in a buffer of exactly its length plus the one
 * byte the parser may write (ASan catches a byte past it). Properties
 * beyond "no crash": every field stays in its range and its text parses
 * back; nothing around the config is written; no more bad lines than
 * lines; the lines are independent (the file gives the same config and the
 * same count as its lines applied one by one); and the config written back
 * as a file (`key = value` per setting) reads back, without a bad line,
 * to the same config. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "conffile.h"

#define PATH "fuzz.conf"

/* Each setting's value as text into out[i] (the value's text may live in the
 * input: copied). */
static void snapshot(struct sc_config *cfg, char out[][SC_PORTS_TEXT_MAX])
{
	char buf[64];

	for (unsigned i = 0; i < sc_settings_count; i++) {
		const char *t = sc_setting_current(cfg, &sc_settings[i], buf, sizeof buf);
		size_t n = strnlen(t, SC_PORTS_TEXT_MAX - 1);
		memcpy(out[i], t, n);
		out[i][n] = '\0';
	}
}

static void same(char a[][SC_PORTS_TEXT_MAX], char b[][SC_PORTS_TEXT_MAX], const char *what)
{
	for (unsigned i = 0; i < sc_settings_count; i++)
		FUZZ_ASSERT(strcmp(a[i], b[i]) == 0, "%s: %s is '%s', not '%s'", what,
			    sc_settings[i].env, b[i], a[i]);
}

/* A value the file's syntax can carry: no newline, no blank at either
 * end (trimmed), no '#' after a blank (a comment) or first. */
static bool writable(const char *v)
{
	size_t n = strlen(v);

	if (strchr(v, '\n') || strchr(v, '\r') || (n && (v[0] == ' ' || v[0] == '\t')) ||
	    (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) || v[0] == '#')
		return false;
	for (const char *p = n ? v + 1 : v; *p; p++)
		if (*p == '#' && (p[-1] == ' ' || p[-1] == '\t'))
			return false;
	return true;
}

/* The config as a settings file, applied over the defaults again. */
static void round_trip(char want[][SC_PORTS_TEXT_MAX])
{
	static struct guarded_config g;
	static char file[32 * (64 + SC_PORTS_TEXT_MAX)];
	static char got[64][SC_PORTS_TEXT_MAX];
	char key[64];
	size_t len = 0;

	for (unsigned i = 0; i < sc_settings_count; i++) {
		if (!writable(want[i]))
			return;
		len += (size_t)snprintf(file + len, sizeof file - len, "%s = %s\n",
					sc_setting_key(&sc_settings[i], key, sizeof key), want[i]);
	}
	guard_init(&g);
	int bad = sc_conf_apply_text(&g.cfg, PATH, file, len);
	guard_check(&g);
	FUZZ_ASSERT(bad == 0, "the config written as a file has %d bad lines", bad);
	snapshot(&g.cfg, got);
	same(want, got, "written and read back");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guarded_config whole, by_line;
	static char a[64][SC_PORTS_TEXT_MAX], b[64][SC_PORTS_TEXT_MAX];
	char *text = malloc(size + 1), *copy = malloc(size + 1);
	char **kept = NULL;
	unsigned lines = 0;
	int bad_lines = 0;

	if (!text || !copy || sc_settings_count > 64 || size > 65536)
		goto out;
	memcpy(text, data, size);
	memcpy(copy, data, size);
	guard_init(&whole);
	int bad = sc_conf_apply_text(&whole.cfg, PATH, text, size);
	guard_check(&whole);
	config_check(&whole.cfg);
	snapshot(&whole.cfg, a);

	/* The same lines, one call each, in a buffer of their own length (kept
	 * to the end: SAFECLOSE_STATS's value points into its line). */
	guard_init(&by_line);
	kept = calloc(size + 1, sizeof *kept);
	if (!kept)
		goto out;
	for (size_t start = 0; start < size; lines++) {
		const char *nl = memchr(copy + start, '\n', size - start);
		size_t n = nl ? (size_t)(nl - (copy + start)) : size - start;
		char *line = kept[lines] = malloc(n + 1);
		if (!line)
			goto out;
		memcpy(line, copy + start, n);
		bad_lines += sc_conf_apply_text(&by_line.cfg, PATH, line, n);
		start += n + 1;
	}
	snapshot(&by_line.cfg, b);
	guard_check(&by_line);
	FUZZ_ASSERT(bad <= (int)lines, "%d bad lines of %u", bad, lines);
	FUZZ_ASSERT(bad == bad_lines, "%d bad lines in the file, %d one by one", bad, bad_lines);
	if (lines)
		same(a, b, "the file and its lines one by one");
	round_trip(a);
out:
	for (unsigned i = 0; kept && i < lines; i++)
		free(kept[i]);
	free(kept);
	free(text);
	free(copy);
	return 0;
}
