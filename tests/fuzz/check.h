/* check.h: what every settings fuzz target asserts of a parsed struct
 * sc_config besides "no crash": each field within its setting's range, the
 * bytes around the struct untouched, and each value's text parsing back to
 * the same value. A failed property aborts, which libFuzzer reports as a
 * crash with the input that caused it. */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define GUARD_BYTE 0xa5
#define GUARD_LEN 64

/* A config between two guard zones: a write past a field stays inside the
 * allocation, where ASan cannot see it; the guards can. */
struct guarded_config {
	unsigned char before[GUARD_LEN];
	struct sc_config cfg;
	unsigned char after[GUARD_LEN];
};

/* The make targets run libFuzzer with -close_fd_mask=2: the shim's own
 * lines about bad values (one per input, mostly) would flood the output.
 * A failed property is still told, on a copy of stderr taken before
 * libFuzzer silences it (LLVMFuzzerInitialize runs first). */
static int report_fd = 2;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	report_fd = dup(2);
	return 0;
}

#define FUZZ_ASSERT(cond, ...)                                             \
	do {                                                               \
		if (!(cond)) {                                             \
			dprintf(report_fd, "property failed: %s: ", #cond); \
			dprintf(report_fd, __VA_ARGS__);                   \
			dprintf(report_fd, "\n");                          \
			abort();                                           \
		}                                                          \
	} while (0)

static inline void guard_init(struct guarded_config *g)
{
	memset(g->before, GUARD_BYTE, sizeof g->before);
	memset(g->after, GUARD_BYTE, sizeof g->after);
	sc_config_defaults(&g->cfg);
}

static inline void guard_check(const struct guarded_config *g)
{
	for (unsigned i = 0; i < GUARD_LEN; i++) {
		FUZZ_ASSERT(g->before[i] == GUARD_BYTE, "byte %u before the config written", i);
		FUZZ_ASSERT(g->after[i] == GUARD_BYTE, "byte %u after the config written", i);
	}
}

/* Every numeric or choice field in its setting's range; the ports' text a
 * terminated string within its buffer; every value's text (what --check
 * and the messages print) parses back to what the field holds. */
static inline void config_check(struct sc_config *cfg)
{
	char buf[64];

	FUZZ_ASSERT(memchr(cfg->ports.text, '\0', sizeof cfg->ports.text), "ports text unterminated");
	for (unsigned i = 0; i < sc_settings_count; i++) {
		const struct sc_setting *s = &sc_settings[i];
		if (s->kind)
			continue;
		long v = *s->field(cfg), back;
		FUZZ_ASSERT(v >= s->min && v <= s->max, "%s = %ld out of %ld..%ld", s->env, v,
			    s->min, s->max);
		const char *text = sc_setting_current(cfg, s, buf, sizeof buf);
		FUZZ_ASSERT(sc_setting_parse(s, text, &back) && back == v,
			    "%s: its text '%s' does not parse back to %ld", s->env, text, v);
	}
}

#endif
