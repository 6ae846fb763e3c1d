/* ports.c: owns the local-port filter: parsing the list of ports and ranges,
 * and asking a socket for its local port (one getsockname, async-signal-safe,
 * errno left alone). Free of hook code so it can be unit-tested directly. */
#include "ports.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"

static const char *blank_skipped(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* A port number 1..65535 at *p, strictly digits; advances *p past it. */
static bool parse_port(const char **p, unsigned *port)
{
	unsigned long v = 0;
	const char *q = *p;

	if (*q < '0' || *q > '9')
		return false;
	for (; *q >= '0' && *q <= '9'; q++)
		if ((v = v * 10 + (unsigned long)(*q - '0')) > 65535)
			return false;
	if (v == 0)
		return false;
	*port = (unsigned)v;
	*p = q;
	return true;
}

static void add_range(struct sc_ports *ports, unsigned lo, unsigned hi)
{
	for (unsigned port = lo; port <= hi; port++)
		ports->bits[port / 64] |= 1ull << (port % 64);
}

bool sc_ports_parse(struct sc_ports *ports, const char *text)
{
	static struct sc_ports parsed; /* at start-up only: no concurrent use */
	const char *p = blank_skipped(text);

	if (strlen(text) >= SC_PORTS_TEXT_MAX)
		return false;
	memset(&parsed, 0, sizeof parsed);
	if (strncmp(p, "all", 3) == 0 && !*blank_skipped(p + 3)) {
		parsed.all = true;
	} else {
		for (;;) {
			unsigned lo, hi;
			if (!parse_port(&p, &lo))
				return false;
			hi = lo;
			if (*p == '-') {
				p++;
				if (!parse_port(&p, &hi) || hi < lo)
					return false;
			}
			add_range(&parsed, lo, hi);
			p = blank_skipped(p);
			if (!*p)
				break;
			if (*p != ',')
				return false;
			p = blank_skipped(p + 1);
		}
	}
	strcpy(parsed.text, text);
	*ports = parsed;
	return true;
}

bool sc_ports_has(const struct sc_ports *ports, unsigned port)
{
	return ports->all || (port < 65536 && (ports->bits[port / 64] >> (port % 64) & 1));
}

bool sc_ports_admit(int fd)
{
	if (sc_cfg.ports.all)
		return true;
	int saved_errno = errno;
	struct sockaddr_storage addr;
	socklen_t len = sizeof addr;
	unsigned port = 0;

	addr.ss_family = AF_UNSPEC; /* no port unless getsockname says which */
	if (getsockname(fd, (struct sockaddr *)&addr, &len) == 0) {
		if (addr.ss_family == AF_INET)
			port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
		else if (addr.ss_family == AF_INET6)
			port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
	}
	errno = saved_errno;
	return port && sc_ports_has(&sc_cfg.ports, port);
}
