/* fuzz_env.c: libFuzzer target for the settings read from the environment
 * (shim/config.c's table, through sc_config_load, and the unknown-name
 * check of shim/conffile.c). The input is an environment, one NAME=VALUE a
 * line. Properties beyond "no crash": each setting's value is what a
 * separately written reference makes of its text (a strict decimal number
 * in the setting's range, or exactly one of its names; else the default);
 * the count of bad values is the count of refused texts; every field stays
 * in its range and its text parses back; nothing around the config is
 * written. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "conffile.h"

#define MAX_VARS 64

static char *vars[MAX_VARS + 1];

/* getenv over vars: the first NAME= wins, as in a real environment. */
static const char *lookup(const char *name)
{
	size_t n = strlen(name);

	for (char **v = vars; *v; v++)
		if (strncmp(*v, name, n) == 0 && (*v)[n] == '=')
			return *v + n + 1;
	return NULL;
}

/* Digits only, no sign, no blank, in min..max (leading zeros allowed). */
static bool ref_number(const struct sc_setting *s, const char *text, long *out)
{
	long v = 0;

	if (!*text)
		return false;
	for (const char *p = text; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (*p - '0');
		if (v > s->max)
			return false;
	}
	if (v < s->min)
		return false;
	*out = v;
	return true;
}

static bool ref_choice(const struct sc_setting *s, const char *text, long *out)
{
	for (long i = 0; s->choices[i]; i++)
		if (strcmp(s->choices[i], text) == 0) {
			*out = i;
			return true;
		}
	return false;
}

/* Whether the setting's text is valid, and the config it gave is right. */
static bool check_setting(const struct sc_setting *s, struct sc_config *cfg, const char *text)
{
	static struct sc_ports scratch;
	long want = s->def;
	bool ok;

	if (s->kind == NULL) {
		ok = s->choices ? ref_choice(s, text, &want) : ref_number(s, text, &want);
		if (!ok)
			want = s->def;
		FUZZ_ASSERT(*s->field(cfg) == want, "%s='%s' gave %ld, not %ld", s->env, text,
			    *s->field(cfg), want);
		return ok;
	}
	if (strcmp(s->env, "SAFECLOSE_STATS") == 0) {
		FUZZ_ASSERT(*text ? cfg->stats_path == text : cfg->stats_path == NULL,
			    "SAFECLOSE_STATS='%s' not taken as it is", text);
		return true;
	}
	ok = sc_ports_parse(&scratch, text); /* its grammar: fuzz_ports.c */
	FUZZ_ASSERT(strcmp(cfg->ports.text, ok ? text : "all") == 0,
		    "SAFECLOSE_PORTS='%s' gave '%s'", text, cfg->ports.text);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guarded_config g;
	char *text = malloc(size + 1);
	unsigned n = 0;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *line = text, *next; line && n < MAX_VARS; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strchr(line, '='))
			vars[n++] = line;
	}
	vars[n] = NULL;

	guard_init(&g);
	int bad = sc_config_load(&g.cfg, lookup), refused = 0;
	guard_check(&g);
	config_check(&g.cfg);
	for (unsigned i = 0; i < sc_settings_count; i++) {
		const char *value = lookup(sc_settings[i].env);
		if (value && !check_setting(&sc_settings[i], &g.cfg, value))
			refused++;
	}
	FUZZ_ASSERT(bad == refused, "%d bad values reported, %d refused", bad, refused);
	/* Unknown SAFECLOSE_ names, each with its closest setting. */
	unsigned unknown = (unsigned)sc_conf_check_env(vars);
	FUZZ_ASSERT(unknown <= n, "%u unknown names among %u variables", unknown, n);
	free(text);
	return 0;
}
