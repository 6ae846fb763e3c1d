/* settings_doc.c: prints the shim's settings table as the Markdown table in
 * README.md, from the same table the parser uses, so the two cannot drift
 * (tests/test_shim_basics.py compares them). */
#include <stdio.h>

#include "../shim/config.h"

static void print_row(const struct sc_setting *s)
{
	printf("| `%s` | ", s->env);
	if (s->choices) {
		for (int i = 0; s->choices[i]; i++)
			printf("%s`%s`", i ? ", " : "", s->choices[i]);
		printf(" | `%s` | ", s->choices[s->def]);
	} else if (s->text_field) {
		printf("a path | unset | ");
	} else {
		printf("%ld..%ld %s | `%ld` | ", s->min, s->max, s->unit, s->def);
	}
	printf("%s |\n", s->help);
}

int main(void)
{
	printf("| variable | values | default | meaning |\n");
	printf("|---|---|---|---|\n");
	for (unsigned i = 0; i < sc_settings_count; i++)
		print_row(&sc_settings[i]);
	return 0;
}
