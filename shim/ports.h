/* ports.h: the local-port filter (SAFECLOSE_PORTS=80,443,8000-8100): which
 * connections are the shim's, decided once where a socket is first tracked. */
#ifndef SAFECLOSE_PORTS_H
#define SAFECLOSE_PORTS_H

#include <stdbool.h>
#include <stdint.h>

#define SC_PORTS_TEXT_MAX 256

/* A set of local ports: every port, or those whose bit is set. */
struct sc_ports {
	bool all;
	uint64_t bits[65536 / 64];
	char text[SC_PORTS_TEXT_MAX]; /* as given, for messages */
};

/* "all", or ports and ranges separated by commas ("80,443,8000-8100"; blanks
 * around them allowed); false (ports unchanged) when text is not that. */
bool sc_ports_parse(struct sc_ports *ports, const char *text);

bool sc_ports_has(const struct sc_ports *ports, unsigned port);

/* Whether socket fd's local port is in the filter of the settings in use;
 * one getsockname unless the filter takes every port. errno is preserved. */
bool sc_ports_admit(int fd);

#endif
