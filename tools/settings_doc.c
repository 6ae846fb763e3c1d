/* settings_doc.c: prints the shim's settings, from the same table the parser
 * uses, so no copy can drift (tests/test_shim_basics.py compares them):
 * without arguments the Markdown table in README.md, with --conf the
 * example settings file conf/safeclose.conf, with --man the settings
 * section of the libsafeclose(7) man page (man(7) macros). */
#include <stdio.h>
#include <string.h>

#include "../shim/config.h"
#include "../shim/conffile.h"

static void print_row(const struct sc_setting *s)
{
	printf("| `%s` | ", s->env);
	if (s->list) {
		printf("%s | `%s` | ", s->list->values, s->list->def);
	} else if (s->choices) {
		for (int i = 0; s->choices[i]; i++)
			printf("%s`%s`", i ? ", " : "", s->choices[i]);
		printf(" | `%s` | ", s->choices[s->def]);
	} else {
		printf("%ld..%ld %s | `%ld` | ", s->min, s->max, s->unit, s->def);
	}
	printf("%s |\n", s->help);
}

static void print_markdown(void)
{
	printf("| variable | values | default | meaning |\n");
	printf("|---|---|---|---|\n");
	for (unsigned i = 0; i < sc_settings_count; i++)
		print_row(&sc_settings[i]);
}

/* The help text as "# "-comment lines of at most 76 columns, backticks off. */
static void print_comment(const char *text)
{
	char word[256];
	int col = 0;

	while (*text) {
		size_t n = 0;
		while (*text == ' ')
			text++;
		while (*text && *text != ' ' && n + 1 < sizeof word)
			if (*text++ != '`')
				word[n++] = text[-1];
		word[n] = '\0';
		if (!n)
			break;
		if (col && col + 1 + (int)n > 76) {
			putchar('\n');
			col = 0;
		}
		col += printf(col ? " %s" : "# %s", word);
	}
	if (col)
		putchar('\n');
}

static void print_values(const struct sc_setting *s, const char *sep)
{
	if (s->list) {
		printf("%s", s->list->values);
		return;
	}
	if (!s->choices) {
		printf("%ld..%ld %s", s->min, s->max, s->unit);
		return;
	}
	for (int i = 0; s->choices[i]; i++)
		printf("%s%s", i ? sep : "", s->choices[i]);
}

static const char *default_text(const struct sc_setting *s, char *buf, size_t size)
{
	return sc_setting_default(s, buf, size);
}

static void print_conf(void)
{
	printf("# safeclose.conf: the settings of libsafeclose, read once when a program\n"
	       "# starts with the library preloaded (by the safeclose command or\n"
	       "# LD_PRELOAD). Looked for as $SAFECLOSE_CONF, then /etc/safeclose.conf.\n"
	       "#\n"
	       "# One `key = value` a line; `#` starts a comment (at the start of a line\n"
	       "# or after a blank). The key is the environment variable without\n"
	       "# SAFECLOSE_, in lower case; a variable set in the environment overrides\n"
	       "# the file's line. A bad line is reported on stderr with its line number\n"
	       "# and the value used instead: it never stops the program.\n"
	       "#\n"
	       "# Every setting is listed below with its default, commented out.\n"
	       "# Generated from the settings table (build/safeclose-settings --conf).\n");
	for (unsigned i = 0; i < sc_settings_count; i++) {
		const struct sc_setting *s = &sc_settings[i];
		char key[64], def[24];

		printf("\n");
		print_comment(s->help);
		printf("# values: ");
		print_values(s, ", ");
		printf("; environment: %s\n", s->env);
		printf("#%s = %s\n", sc_setting_key(s, key, sizeof key), default_text(s, def, sizeof def));
	}
}

/* The help text for roff: `word` in bold, a leading dot or quote escaped. */
static void print_roff(const char *text)
{
	bool bold = false;

	for (const char *p = text; *p; p++) {
		if (*p == '`') {
			fputs(bold ? "\\fR" : "\\fB", stdout);
			bold = !bold;
		} else if (*p == '\\') {
			fputs("\\e", stdout);
		} else if (*p == '-') {
			fputs("\\-", stdout);
		} else {
			putchar(*p);
		}
		if (*p == '.' && p[1] == ' ')
			fputs("\n", stdout), p++; /* one sentence a line, as man(7) wants */
	}
	putchar('\n');
}

static void print_man(void)
{
	for (unsigned i = 0; i < sc_settings_count; i++) {
		const struct sc_setting *s = &sc_settings[i];
		char key[64], def[24];

		printf(".TP\n.BR %s \" (file: \" %s )\n", s->env, sc_setting_key(s, key, sizeof key));
		printf("Values: ");
		print_values(s, ", ");
		printf("; default: %s.\n", default_text(s, def, sizeof def));
		print_roff(s->help);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--conf") == 0)
		print_conf();
	else if (argc > 1 && strcmp(argv[1], "--man") == 0)
		print_man();
	else
		print_markdown();
	return 0;
}
