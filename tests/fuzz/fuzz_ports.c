/* fuzz_ports.c: libFuzzer target for the SAFECLOSE_PORTS list
 * (shim/ports.c). The input is the list's text. Properties beyond "no
 * crash": the parser accepts exactly what a second, independently written
 * parser of the same grammar accepts, and then holds exactly its ports; a
 * refused text leaves the filter as it was; an accepted one is kept as
 * given; port 0 and ports past 65535 are never in a list. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ports.h"

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The text between s and e with the blanks at both ends left off. */
static void strip(const char **s, const char **e)
{
	while (*s < *e && blank(**s))
		(*s)++;
	while (*e > *s && blank((*e)[-1]))
		(*e)--;
}

/* A run of digits [s, e) as a port 1..65535. */
static bool ref_port(const char *s, const char *e, unsigned *port)
{
	unsigned long v = 0;

	if (s == e)
		return false;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return false;
	}
	*port = (unsigned)v;
	return v >= 1;
}

/* One comma-separated piece: PORT or PORT-PORT, blanks only around it. */
static bool ref_piece(const char *s, const char *e, uint64_t *bits)
{
	strip(&s, &e);
	const char *dash = memchr(s, '-', (size_t)(e - s));
	unsigned lo, hi;

	if (!ref_port(s, dash ? dash : e, &lo))
		return false;
	if (!dash)
		hi = lo;
	else if (!ref_port(dash + 1, e, &hi) || hi < lo)
		return false;
	for (unsigned p = lo; p <= hi; p++)
		bits[p / 64] |= 1ull << (p % 64);
	return true;
}

static bool ref_parse(const char *text, uint64_t *bits, bool *all)
{
	const char *s = text, *e = text + strlen(text);

	if (strlen(text) >= SC_PORTS_TEXT_MAX)
		return false;
	strip(&s, &e);
	*all = e - s == 3 && memcmp(s, "all", 3) == 0;
	if (*all)
		return true;
	for (;;) {
		const char *comma = memchr(s, ',', (size_t)(e - s));
		if (!ref_piece(s, comma ? comma : e, bits))
			return false;
		if (!comma)
			return true;
		s = comma + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sc_ports ports, before;
	static uint64_t bits[65536 / 64];
	char *text = malloc(size + 1);
	bool all = false;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* What a refused text must leave alone: a filter set before. */
	memset(&ports, 0, sizeof ports);
	FUZZ_ASSERT(sc_ports_parse(&ports, "22,8000-8010"), "a valid list refused");
	before = ports;
	memset(bits, 0, sizeof bits);

	bool ok = sc_ports_parse(&ports, text), ref = ref_parse(text, bits, &all);
	FUZZ_ASSERT(ok == ref, "'%s': parser %d, reference %d", text, ok, ref);
	if (!ok) {
		FUZZ_ASSERT(memcmp(&ports, &before, sizeof ports) == 0, "'%s' refused but changed", text);
	} else {
		FUZZ_ASSERT(ports.all == all, "'%s': all %d", text, ports.all);
		FUZZ_ASSERT(strcmp(ports.text, text) == 0, "'%s' kept as '%s'", text, ports.text);
		if (!all) {
			FUZZ_ASSERT(memcmp(ports.bits, bits, sizeof bits) == 0, "'%s': other ports", text);
			FUZZ_ASSERT(!sc_ports_has(&ports, 0) && !sc_ports_has(&ports, 65536) &&
					    !sc_ports_has(&ports, ~0u),
				    "'%s' holds port 0 or one past 65535", text);
		}
	}
	free(text);
	return 0;
}
