/* config.c: owns the settings: the table of every setting (name, choices or
 * range, default, help), parsing them from the environment with strict range
 * checks, and the one-line report of a bad value. Free of hook code so it can
 * be unit-tested directly. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *const mode_names[] = { "off", "pending", "always", "observe", NULL };
static const char *const log_names[] = { "error", "info", "debug", NULL };
static const char *const where_names[] = { "async", "sync", NULL };
static const char *const onoff_names[] = { "linger", "off", NULL };
static const char *const inherited_names[] = { "own", "ignore", NULL };
static const char *const role_names[] = { "server", "client", "both", NULL };

static long *field_mode(struct sc_config *c) { return &c->mode; }
static long *field_linger(struct sc_config *c) { return &c->linger_ms; }
static long *field_idle(struct sc_config *c) { return &c->idle_ms; }
static long *field_log(struct sc_config *c) { return &c->log_level; }
static long *field_where(struct sc_config *c) { return &c->where; }
static long *field_max(struct sc_config *c) { return &c->max_linger; }
static long *field_discard(struct sc_config *c) { return &c->discard_max; }
static long *field_idle_load(struct sc_config *c) { return &c->idle_under_load_ms; }
static long *field_exit(struct sc_config *c) { return &c->exit_wait_ms; }
static long *field_at_exit(struct sc_config *c) { return &c->at_exit; }
static long *field_at_exec(struct sc_config *c) { return &c->at_exec; }
static long *field_inherited(struct sc_config *c) { return &c->inherited; }
static long *field_role(struct sc_config *c) { return &c->role; }
static long *field_ab(struct sc_config *c) { return &c->ab_percent; }
static long *field_interval(struct sc_config *c) { return &c->stats_interval_ms; }

static bool parse_ports(struct sc_config *c, const char *text)
{
	return sc_ports_parse(&c->ports, text);
}

static const char *ports_text(const struct sc_config *c)
{
	return c->ports.text;
}

static const struct sc_kind ports_kind = {
	parse_ports, ports_text,
	"a list of ports and ranges (like 80,443,8000-8100), or all", "all",
};

/* SAFECLOSE_STATS, a path: the text itself (the environment's, or the conf
 * file's static copy; statsfile copies it at start-up), empty for none. */
static bool parse_stats_path(struct sc_config *c, const char *text)
{
	c->stats_path = *text ? text : NULL;
	return true;
}

static const char *stats_path_text(const struct sc_config *c)
{
	return c->stats_path ? c->stats_path : "";
}

static const struct sc_kind stats_path_kind = {
	parse_stats_path, stats_path_text, "a file path (%p: the pid), or empty for none", "",
};

const struct sc_setting sc_settings[] = {
	{ "SAFECLOSE_MODE", mode_names, SC_MODE_PENDING, 0, 3, NULL,
	  "Which closes linger: `pending` those a reset could cost a reply "
	  "(output unacknowledged or, once the connection carried output of ours, "
	  "input unread or a peer that has not finished), `always` every "
	  "connected TCP close, `off` none (the shim passes everything through), "
	  "`observe` none, but every release of a connected TCP socket is "
	  "classified and counted (SAFECLOSE_STATS).",
	  field_mode, NULL },
	{ "SAFECLOSE_AB", NULL, 100, 0, 100, "%",
	  "A/B split: this share of connections, picked by a stable hash of their "
	  "address 4-tuple, is the `linger` arm (treated as SAFECLOSE_MODE says); the "
	  "rest is the `control` arm, treated as `observe` treats every connection.",
	  field_ab, NULL },
	{ .env = "SAFECLOSE_STATS",
	  .help = "A file (`%p`: the pid) where each process writes its counters "
		  "per arm as one JSON object, at exit, before execve() and every "
		  "SAFECLOSE_STATS_INTERVAL_MS; empty or unset: none.",
	  .kind = &stats_path_kind },
	{ "SAFECLOSE_STATS_INTERVAL_MS", NULL, 10000, 0, 3600000, "ms",
	  "How often the stats file is rewritten while the program runs (at the "
	  "first socket call after the interval, or by the background thread); "
	  "0: only at exit and exec.",
	  field_interval, NULL },
	{ "SAFECLOSE_LINGER_MS", NULL, 30000, 0, 3600000, "ms",
	  "Upper bound on one lingering close, from close() to release.",
	  field_linger, NULL },
	{ "SAFECLOSE_IDLE_MS", NULL, 5000, 0, 3600000, "ms",
	  "A lingering close ends early when nothing moves (no byte read, no "
	  "byte of our output acknowledged) for this long.",
	  field_idle, NULL },
	{ "SAFECLOSE_LINGER", where_names, SC_LINGER_ASYNC, 0, 1, NULL,
	  "Where the linger runs: `async` in one background thread, close() "
	  "returns at once (safe for event loops); `sync` inside close(), which "
	  "returns when the connection is done.",
	  field_where, NULL },
	{ "SAFECLOSE_MAX_LINGER", NULL, 4096, 0, 1048576, "sockets",
	  "At most this many sockets linger in the background at once: past it a "
	  "close still lingers, and an older linger is ended to make room (first a "
	  "peer that has all our output acknowledged and discards the most, which "
	  "loses at most a reset after its reply; else the longest lingering). Closes "
	  "queued for the thread count too against a hard bound of a quarter of "
	  "RLIMIT_NOFILE, past which a close only half-closes and drains without "
	  "waiting; 0: none lingers in the background.",
	  field_max, NULL },
	{ "SAFECLOSE_DISCARD_MAX", NULL, 0, 0, 1073741824, "bytes",
	  "A linger ends early once it has discarded this much input and the peer "
	  "has acknowledged all our output (its kernel has the reply: what goes on "
	  "arriving is a flood, or the rest of an upload refused); 0: no bound, "
	  "only the time bounds, as nginx's lingering close (a refused upload's "
	  "client may read its reply only after sending the whole body). While "
	  "output is unacknowledged only the time bounds apply.",
	  field_discard, NULL },
	{ "SAFECLOSE_IDLE_UNDER_LOAD_MS", NULL, 1000, 0, 3600000, "ms",
	  "The idle bound (SAFECLOSE_IDLE_MS, if shorter) while more than half of "
	  "SAFECLOSE_MAX_LINGER sockets linger in the background, as Apache "
	  "shortens its lingering under load; it applies from each linger's next "
	  "step.",
	  field_idle_load, NULL },
	{ "SAFECLOSE_EXIT_WAIT_MS", NULL, 5000, 0, 3600000, "ms",
	  "Only where no heir process can be made (clone refused, no memory, the "
	  "exit of a container's init or its child): how long exit() and exec "
	  "wait, at most, for the sockets still lingering. With a heir they never "
	  "wait.",
	  field_exit, NULL },
	{ "SAFECLOSE_AT_EXIT", onoff_names, SC_LINGER_ON, 0, 1, NULL,
	  "Connections a program still holds when it ends (exit(), return from "
	  "main, _exit()) are lingered like a close, by a heir process once the "
	  "program is gone, so exit is not delayed and no thread's write fails "
	  "(`linger`), or left to the kernel (`off`). Output buffered in stdio is "
	  "flushed first; sockets closed earlier and still lingering go to the "
	  "heir either way.",
	  field_at_exit, NULL },
	{ "SAFECLOSE_AT_EXEC", onoff_names, SC_LINGER_ON, 0, 1, NULL,
	  "Close-on-exec connections are lingered once execve() has succeeded, by "
	  "a heir process (`linger`; a failed exec leaves them as they were and "
	  "returns at once), or left to the kernel (`off`).",
	  field_at_exec, NULL },
	{ "SAFECLOSE_INHERITED", inherited_names, SC_INHERITED_OWN, 0, 1, NULL,
	  "TCP sockets open when the program starts (inetd, tcpserver, systemd "
	  "Accept=yes): when the parent runs under the shim its books tell who "
	  "holds them; otherwise `own` takes a socket as the program's when no "
	  "other descriptor of it refers to it, `ignore` leaves them all alone "
	  "(for programs whose parent keeps using the connection).",
	  field_inherited, NULL },
	{ "SAFECLOSE_ROLE", role_names, SC_ROLE_SERVER, 0, 2, NULL,
	  "Which connections linger: `server` those the program accepted (and "
	  "inherited or received ones, the inetd and worker cases), `client` those "
	  "it connected itself, `both`. A client that closes mid-download means to "
	  "abort it (the reset tells the sender to stop), so connected sockets keep "
	  "the kernel's behaviour unless asked.",
	  field_role, NULL },
	{ .env = "SAFECLOSE_PORTS",
	  .help = "Which connections linger, by their local port: `all`, or ports "
		  "and ranges separated by commas (`80,443,8000-8100`). A connection "
		  "on another port is left exactly as without the shim (decided when it "
		  "is accepted, inherited or received). Sockets the program connects "
		  "itself (SAFECLOSE_ROLE=client or both) are not filtered: their local "
		  "port is not known when they are made.",
	  .kind = &ports_kind },
	{ "SAFECLOSE_LOG", log_names, SC_LOG_ERROR, 0, 2, NULL,
	  "What the shim writes to stderr: `error` only bad settings and "
	  "failures, `info` also start-up, `debug` also every lingering close.",
	  field_log, NULL },
};
const unsigned sc_settings_count = sizeof sc_settings / sizeof sc_settings[0];

struct sc_config sc_cfg = {
	.mode = SC_MODE_PENDING,
	.linger_ms = 30000,
	.idle_ms = 5000,
	.where = SC_LINGER_ASYNC,
	.max_linger = 4096,
	.discard_max = 0,
	.idle_under_load_ms = 1000,
	.exit_wait_ms = 5000,
	.at_exit = SC_LINGER_ON,
	.at_exec = SC_LINGER_ON,
	.inherited = SC_INHERITED_OWN,
	.role = SC_ROLE_SERVER,
	.log_level = SC_LOG_ERROR,
	.ab_percent = 100,
	.stats_interval_ms = 10000,
	.stats_path = NULL,
	.ports = { .all = true, .text = "all" },
};

void sc_config_defaults(struct sc_config *cfg)
{
	for (unsigned i = 0; i < sc_settings_count; i++) {
		const struct sc_setting *s = &sc_settings[i];
		if (s->kind)
			s->kind->parse(cfg, s->kind->def);
		else
			*s->field(cfg) = s->def;
	}
}

bool sc_setting_set(struct sc_config *cfg, const struct sc_setting *s, const char *text)
{
	long v;

	if (s->kind)
		return s->kind->parse(cfg, text);
	if (!sc_setting_parse(s, text, &v))
		return false;
	*s->field(cfg) = v;
	return true;
}

static bool parse_choice(const struct sc_setting *s, const char *text, long *out)
{
	for (long i = 0; s->choices[i]; i++) {
		if (strcmp(s->choices[i], text) == 0) {
			*out = i;
			return true;
		}
	}
	return false;
}

static bool parse_number(const struct sc_setting *s, const char *text, long *out)
{
	char *end;

	if (*text < '0' || *text > '9')
		return false; /* strtol would skip blanks and take a sign */
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < s->min || v > s->max)
		return false;
	*out = v;
	return true;
}

bool sc_setting_parse(const struct sc_setting *s, const char *text, long *out)
{
	return s->choices ? parse_choice(s, text, out) : parse_number(s, text, out);
}

const char *sc_setting_value_name(const struct sc_setting *s, long v, char *buf, size_t size)
{
	if (s->choices)
		return s->choices[v];
	sc_format(buf, size, "%ld", v);
	return buf;
}

const char *sc_setting_current(const struct sc_config *cfg, const struct sc_setting *s,
			       char *buf, size_t size)
{
	if (s->kind)
		return s->kind->text(cfg);
	return sc_setting_value_name(s, *s->field((struct sc_config *)cfg), buf, size);
}

const char *sc_setting_default(const struct sc_setting *s, char *buf, size_t size)
{
	return s->kind ? s->kind->def : sc_setting_value_name(s, s->def, buf, size);
}

void sc_setting_describe(const struct sc_setting *s, char *buf, size_t size)
{
	if (s->kind) {
		sc_format(buf, size, "%s", s->kind->values);
		return;
	}
	if (!s->choices) {
		sc_format(buf, size, "a number of %s (%ld..%ld)", s->unit, s->min, s->max);
		return;
	}
	size_t n = (size_t)sc_format(buf, size, "one of ");
	for (unsigned i = 0; s->choices[i] && n < size; i++)
		n += (size_t)sc_format(buf + n, size - n, "%s%s", i ? "|" : "", s->choices[i]);
}

int sc_config_apply_env(struct sc_config *cfg, const char *(*get)(const char *name))
{
	int bad = 0;

	for (unsigned i = 0; i < sc_settings_count; i++) {
		const struct sc_setting *s = &sc_settings[i];
		const char *text = get(s->env);

		if (!text || sc_setting_set(cfg, s, text))
			continue;
		char valid[128], kept[24];
		sc_setting_describe(s, valid, sizeof valid);
		sc_log_write(SC_LOG_ERROR, "config", "%s: '%s' is not %s, using %s", s->env, text,
			     valid, sc_setting_current(cfg, s, kept, sizeof kept));
		bad++;
	}
	return bad;
}

int sc_config_load(struct sc_config *cfg, const char *(*get)(const char *name))
{
	sc_config_defaults(cfg);
	return sc_config_apply_env(cfg, get);
}

const char *sc_mode_name(long mode)
{
	return mode >= 0 && mode <= SC_MODE_OBSERVE ? mode_names[mode] : "?";
}

bool sc_may_linger(void)
{
	return sc_cfg.mode != SC_MODE_OFF && sc_cfg.mode != SC_MODE_OBSERVE &&
	       sc_cfg.ab_percent > 0;
}

bool sc_role_accepted(void)
{
	return sc_cfg.role != SC_ROLE_CLIENT;
}

bool sc_role_connected(void)
{
	return sc_cfg.role != SC_ROLE_SERVER;
}
