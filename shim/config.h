/* config.h: the shim's settings, and the one table they are defined in. */
#ifndef SAFECLOSE_CONFIG_H
#define SAFECLOSE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "ports.h"

/* observe: classify and count every release, change nothing. */
enum sc_mode { SC_MODE_OFF, SC_MODE_PENDING, SC_MODE_ALWAYS, SC_MODE_OBSERVE };
enum sc_linger_where { SC_LINGER_ASYNC, SC_LINGER_SYNC };
enum sc_onoff { SC_LINGER_ON, SC_LINGER_OFF };
enum sc_inherited { SC_INHERITED_OWN, SC_INHERITED_IGNORE };
enum sc_role { SC_ROLE_SERVER, SC_ROLE_CLIENT, SC_ROLE_BOTH };

struct sc_kind;

struct sc_config {
	long mode;       /* enum sc_mode */
	long linger_ms;  /* total bound of one lingering close */
	long idle_ms;    /* bound while nothing moves */
	long where;      /* enum sc_linger_where */
	long max_linger; /* sockets lingering in the background at once (soft) */
	long discard_max; /* bytes a linger discards once the peer has all our output */
	long idle_under_load_ms; /* the idle bound past half of max_linger */
	long exit_wait_ms; /* how long exit() waits for them */
	long at_exit;    /* enum sc_onoff: linger what is still open at exit */
	long at_exec;    /* enum sc_onoff: linger close-on-exec sockets at exec */
	long inherited;  /* enum sc_inherited: sockets open at start-up */
	long role;       /* enum sc_role: accepted or connected sockets, or both */
	long log_level;  /* enum sc_log_level */
	long ab_percent; /* connections in the linger arm, % */
	long stats_interval_ms; /* between two writes of the stats file */
	const char *stats_path; /* the stats file's name (%p: pid), or NULL; after
				   start-up only compared with NULL (the text
				   is the environment's or the conf file's, copied
				   by statsfile) */
	struct sc_ports ports; /* local ports whose connections are the shim's */
};

/* One row per setting: the parser, its error messages and the README's
 * settings table (`build/safeclose-settings`) all come from here. */
struct sc_setting {
	const char *env;            /* environment variable */
	const char *const *choices; /* NULL-terminated names, or NULL for a number */
	long def, min, max;         /* default and range (choices: index) */
	const char *unit;           /* for numbers */
	const char *help;
	long *(*field)(struct sc_config *);
	const struct sc_kind *kind; /* neither number nor choice; NULL for those */
};

/* A setting that is neither a number nor a choice (SAFECLOSE_PORTS, a list
 * of ports; any free text, such as a path, fits the same way): its own
 * functions parse its text into cfg and give its value back as text, and
 * every other path (defaults, environment, file, docs, --check) takes it
 * through them. */
struct sc_kind {
	/* false, cfg unchanged, when the text is not valid */
	bool (*parse)(struct sc_config *cfg, const char *text);
	const char *(*text)(const struct sc_config *cfg); /* its value, as text */
	const char *values; /* what it holds, for messages and docs */
	const char *def;    /* its default, as text */
};

extern const struct sc_setting sc_settings[];
extern const unsigned sc_settings_count;

/* Settings the close path uses; defaults until sc_config_load() runs. */
extern struct sc_config sc_cfg;

void sc_config_defaults(struct sc_config *cfg);

/* Fills cfg from getenv-like lookup `get`; a bad value is reported with one
 * line on stderr ("SAFECLOSE_IDLE_MS: 'soon' is not a number of ms
 * (0..3600000), using 5000") and replaced by the default. Returns the number of bad values. */
int sc_config_load(struct sc_config *cfg, const char *(*get)(const char *name));

/* Sets from getenv-like `get` what it names, over what cfg holds; a bad
 * value keeps what cfg held and says so. Returns the number of bad values. */
int sc_config_apply_env(struct sc_config *cfg, const char *(*get)(const char *name));

/* A setting's value as text ("pending", "5000"), written into buf if needed. */
const char *sc_setting_value_name(const struct sc_setting *s, long v, char *buf, size_t size);

/* Sets setting s in cfg from text; false, cfg unchanged, when not valid. */
bool sc_setting_set(struct sc_config *cfg, const struct sc_setting *s, const char *text);

/* Setting s's value in cfg as text, written into buf if needed. */
const char *sc_setting_current(const struct sc_config *cfg, const struct sc_setting *s,
			       char *buf, size_t size);

/* Setting s's default as text, written into buf if needed. */
const char *sc_setting_default(const struct sc_setting *s, char *buf, size_t size);

/* What s accepts: "one of off|pending|always", "a number of ms (0..3600000)". */
void sc_setting_describe(const struct sc_setting *s, char *buf, size_t size);

/* The value a setting's text stands for; false when it is not valid. */
bool sc_setting_parse(const struct sc_setting *s, const char *text, long *out);

const char *sc_mode_name(long mode);

/* Whether, by the settings, the shim ever lingers (not off, not observe,
 * SAFECLOSE_AB above 0). */
bool sc_may_linger(void);

/* Whether connections of this kind are the shim's to linger on:
 * accepted (and inherited, and received) ones, or connected ones. */
bool sc_role_accepted(void);
bool sc_role_connected(void);

#endif
