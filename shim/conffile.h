/* conffile.h: the settings file and the whole start-up load of the settings:
 * the defaults, then the file's `key = value` lines, then the environment,
 * each bad line or unknown name reported once on stderr. */
#ifndef SAFECLOSE_CONFFILE_H
#define SAFECLOSE_CONFFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* The file is SAFECLOSE_CONF when set, else this one (when it exists). */
#define SC_CONF_ENV "SAFECLOSE_CONF"
#ifndef SC_CONF_DEFAULT
#define SC_CONF_DEFAULT "/etc/safeclose.conf"
#endif

/* Defaults, the file, then envp's SAFECLOSE_* variables over it; unknown
 * names are reported too. Never from the close path: it reads a file.
 * Returns the number of problems reported (0: all valid). */
int sc_settings_load(struct sc_config *cfg, char *const *envp);

/* The file that sc_settings_load reads for envp, and whether it must exist
 * (named by SAFECLOSE_CONF) or may be missing (the default path). In a
 * secure-execution program (set-user-ID, AT_SECURE) SAFECLOSE_CONF is
 * ignored, as secure_getenv would. */
const char *sc_conf_path(char *const *envp, bool *must_exist);
const char *sc_conf_path_for(char *const *envp, bool secure, bool *must_exist);

/* Applies the lines of text (len bytes, changed in place) read from path
 * over cfg. Returns the number of bad lines, each reported as
 * "path:line: ..." on stderr. */
int sc_conf_apply_text(struct sc_config *cfg, const char *path, char *text, size_t len);

/* Reads path and applies it; a missing file is a problem only if must_exist. */
int sc_conf_apply_file(struct sc_config *cfg, const char *path, bool must_exist);

/* Reports each SAFECLOSE_* variable of envp that is neither a setting nor
 * one of the shim's own, naming the closest setting. Returns their number. */
int sc_conf_check_env(char *const *envp);

/* The file's key of a setting: its variable without SAFECLOSE_, lower case. */
const char *sc_setting_key(const struct sc_setting *s, char *buf, size_t size);

#endif
