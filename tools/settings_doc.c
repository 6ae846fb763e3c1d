/* settings_doc.c: prints the shim's settings, from the same table the parser
 * uses, so no copy can drift (tests/test_shim_basics.py compares them):
 * without arguments the Markdown table in README.md, with --conf the
 * example settings file conf/safeclose.conf, with --man the settings
 * section of the libsafeclose(7) man page (mdoc macros). */
#include <stdio.h>
#include <string.h>

#include "../shim/config.h"
#include "../shim/conffile.h"

static void print_row(const struct sc_setting *s)
{
	printf("| `%s` | ", s->env);
	if (s->kind && *s->kind->def) {
		printf("%s | `%s` | ", s->kind->values, s->kind->def);
	} else if (s->kind) {
		printf("%s | unset | ", s->kind->values);
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
	if (s->kind) {
		printf("%s", s->kind->values);
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

/* Text lines for mdoc: kept until the line ends, then written without the
 * blanks at its end (a text line may not end in one). */
static char mdoc_line[1024];
static size_t mdoc_len;

static void mdoc_flush(void)
{
	size_t start = 0;

	while (mdoc_len && mdoc_line[mdoc_len - 1] == ' ')
		mdoc_len--;
	while (mdoc_len - start > 78) { /* lines of at most 78 bytes, cut at a blank */
		size_t cut = start + 78;
		while (cut > start && mdoc_line[cut] != ' ')
			cut--;
		if (cut == start)
			break;
		printf("%.*s\n", (int)(cut - start), mdoc_line + start);
		start = cut + 1;
	}
	if (mdoc_len > start)
		printf("%.*s\n", (int)(mdoc_len - start), mdoc_line + start);
	mdoc_len = 0;
}

/* A function name at p ("close()", "_exit()"): its length, or 0. */
static size_t function_name(const char *p)
{
	size_t n = 0;

	while (p[n] == '_' || (p[n] >= 'a' && p[n] <= 'z'))
		n++;
	return n && p[n] == '(' && p[n + 1] == ')' ? n : 0;
}

static void mdoc_put(const char *s)
{
	size_t n = strlen(s);

	if (mdoc_len + n >= sizeof mdoc_line)
		mdoc_flush();
	memcpy(mdoc_line + mdoc_len, s, n);
	mdoc_len += n;
}

/* The help text for mdoc: each `word` a .Cm macro line (punctuation that
 * follows it stays with the macro), each sentence on a line of its own. */
static void print_mdoc_text(const char *text)
{
	for (const char *p = text; *p;) {
		size_t fn = (p == text || p[-1] == ' ') ? function_name(p) : 0;
		if (*p == '`' || fn) {
			const char *end = fn ? p + fn + 2 : strchr(p + 1, '`');
			mdoc_flush();
			if (fn)
				printf(".Fn %.*s", (int)fn, p);
			else
				printf(".Cm %.*s", (int)(end - p - 1), p + 1);
			for (p = fn ? end : end + 1; *p && strchr(".,;:)", *p) && (p[1] == ' ' || !p[1]); p++)
				printf(" %c", *p);
			putchar('\n');
			while (*p == ' ')
				p++;
			continue;
		}
		char c[2] = { *p, '\0' };
		mdoc_put(*p == '-' ? "\\-" : *p == '\\' ? "\\e" : c);
		if (*p == '.' && p[1] == ' ') {
			mdoc_flush(); /* one sentence a line, as mdoc wants */
			p++;
		}
		p++;
	}
	mdoc_flush();
}

static void print_man(void)
{
	for (unsigned i = 0; i < sc_settings_count; i++) {
		const struct sc_setting *s = &sc_settings[i];
		char key[64], def[24];

		printf(".It Ev %s Pq Cm %s\n", s->env, sc_setting_key(s, key, sizeof key));
		printf("Values: ");
		print_values(s, ", ");
		const char *d = default_text(s, def, sizeof def);
		if (*d)
			printf("; default:\n.Cm %s .\n", d);
		else
			printf("; default: unset.\n");
		print_mdoc_text(s->help);
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
