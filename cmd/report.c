/* report.c: `safeclose report [--json|--prometheus] FILE|DIR...`: the sum
 * of stats files (SAFECLOSE_STATS, schema version 1; a directory gives
 * every *.json in it, never a writer's .tmp. file), per arm, with the
 * linger-time histograms merged so the percentiles are the family's, not
 * an average of percentiles. Printed as a table with the arms side by side,
 * as one JSON object in the files' own schema (which `report` reads back:
 * a summary sums like the files it came from), or in Prometheus' text
 * format for node_exporter's textfile collector. JSON is read and written
 * with jansson. */
#include "report.h"

#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shim/stats.h"

static const char *const counter_names[] = {
	"closes", "abortive", "at_risk", "clean", "lingered", "fallback",
	"peer_finished", "idle_timeout", "total_timeout", "cut_short", "bytes_discarded",
};
#define N_COUNTERS (sizeof counter_names / sizeof *counter_names)

static const char *const counter_help[N_COUNTERS] = {
	"Releases of the last reference to a connected TCP socket.",
	"Releases with input unread: a plain close resets them (TcpExtTCPAbortOnClose).",
	"Releases with output unacknowledged: a plain close resets if the peer sends more.",
	"Releases with nothing unread and everything acknowledged.",
	"Lingering closes started.",
	"Closes that could not linger (half-closed and drained without waiting).",
	"Lingers ended by the peer's FIN.",
	"Lingers ended by SAFECLOSE_IDLE_MS without progress.",
	"Lingers ended by SAFECLOSE_LINGER_MS.",
	"Lingers cut short (the program needed the descriptor number, or exit's wait ended).",
	"Bytes of input read and thrown away while lingering.",
};

/* What the files add up to: the counters in the order above, then the
 * largest linger and the merged histogram, per arm; and who wrote them. */
struct arm_total {
	uint64_t counter[N_COUNTERS];
	uint64_t max_ms;
	uint64_t hist[STATS_BUCKETS];
};

struct totals {
	unsigned files;
	struct arm_total arm[SC_ARMS];
	json_t *processes; /* [{pid, program, mode, ab}, ...] */
};

/* Where report_print writes (stdout, or stderr for the --stats summary). */
static FILE *out;

static bool bad(const char *path, const char *what)
{
	fprintf(stderr, "safeclose report: %s: %s\n", path, what);
	return false;
}

static bool get_count(json_t *obj, const char *key, uint64_t *value)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*value = (uint64_t)json_integer_value(v);
	return true;
}

static bool add_arm(struct arm_total *t, json_t *arm, const char *path, const char *name)
{
	char what[128];
	uint64_t n, max_ms;

	snprintf(what, sizeof what, "arms.%s is not a version 1 arm", name);
	if (!json_is_object(arm))
		return bad(path, what);
	for (unsigned i = 0; i < N_COUNTERS; i++) {
		if (!get_count(arm, counter_names[i], &n)) {
			snprintf(what, sizeof what, "arms.%s.%s: missing or not a count", name,
				 counter_names[i]);
			return bad(path, what);
		}
		t->counter[i] += n;
	}
	if (!get_count(json_object_get(arm, "linger_ms"), "max", &max_ms))
		return bad(path, "linger_ms.max: missing or not a count");
	if (max_ms > t->max_ms)
		t->max_ms = max_ms;
	size_t i;
	json_t *pair;
	json_array_foreach(json_object_get(arm, "linger_hist"), i, pair) {
		json_t *upper = json_array_get(pair, 0), *count = json_array_get(pair, 1);
		if (!json_is_integer(upper) || !json_is_integer(count) ||
		    json_integer_value(upper) < 0 || json_integer_value(count) < 0)
			return bad(path, "linger_hist: not [[ms, lingers], ...]");
		t->hist[stats_bucket((uint64_t)json_integer_value(upper))] +=
			(uint64_t)json_integer_value(count);
	}
	return true;
}

/* One process's file, or a summary this command wrote (it carries its
 * processes and its count of files). */
static bool add_file(struct totals *t, const char *path)
{
	json_error_t err;
	json_t *obj = json_load_file(path, 0, &err);
	bool ok = true;

	if (!obj) {
		char what[256];
		if (err.line > 0)
			snprintf(what, sizeof what, "line %d: %s", err.line, err.text);
		else
			snprintf(what, sizeof what, "%s", err.text);
		return bad(path, what);
	}
	json_t *arms = json_object_get(obj, "arms"), *summed = json_object_get(obj, "processes");
	if (json_integer_value(json_object_get(obj, "version")) != 1 || !json_is_object(arms))
		ok = bad(path, "not a version 1 stats file");
	for (int a = 0; ok && a < SC_ARMS; a++)
		ok = add_arm(&t->arm[a], json_object_get(arms, stats_arm_name(a)), path,
			     stats_arm_name(a));
	if (ok && json_is_array(summed)) {
		t->files += (unsigned)json_integer_value(json_object_get(obj, "files"));
		json_array_extend(t->processes, summed);
	} else if (ok) {
		t->files++;
		json_array_append_new(t->processes,
				      json_pack("{s:O?,s:O?,s:O?,s:O?}", "pid",
						json_object_get(obj, "pid"), "program",
						json_object_get(obj, "program"), "mode",
						json_object_get(obj, "mode"), "ab",
						json_object_get(obj, "ab")));
	}
	json_decref(obj);
	return ok;
}

static int is_stats_name(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0 && !strstr(d->d_name, ".tmp.");
}

static bool add_path(struct totals *t, const char *path)
{
	struct dirent **names;
	DIR *dir = opendir(path);

	if (!dir)
		return add_file(t, path);
	closedir(dir);
	int n = scandir(path, &names, is_stats_name, alphasort);
	bool ok = n >= 0 || bad(path, "cannot list it");
	for (int i = 0; i < n; i++) {
		char file[4096];
		snprintf(file, sizeof file, "%s/%s", path, names[i]->d_name);
		ok = add_file(t, file) && ok;
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	return ok;
}

static uint64_t percentile(const struct arm_total *a, unsigned p)
{
	return stats_percentile(a->hist, p, a->max_ms);
}

/* The same schema as one process's file, summed: version, files,
 * processes, arms (every counter, linger_ms, linger_hist). */
static json_t *totals_json(const struct totals *t)
{
	json_t *arms = json_object();

	for (int a = 0; a < SC_ARMS; a++) {
		const struct arm_total *at = &t->arm[a];
		json_t *arm = json_object(), *hist = json_array();
		for (unsigned i = 0; i < N_COUNTERS; i++)
			json_object_set_new(arm, counter_names[i],
					    json_integer((json_int_t)at->counter[i]));
		json_object_set_new(arm, "linger_ms",
				    json_pack("{s:I,s:I,s:I}", "p50", (json_int_t)percentile(at, 50),
					      "p99", (json_int_t)percentile(at, 99), "max",
					      (json_int_t)at->max_ms));
		for (unsigned b = 0; b < STATS_BUCKETS; b++) {
			uint64_t upper = stats_bucket_upper(b);
			if (at->hist[b]) /* the open last bucket's edge as JSON's largest integer */
				json_array_append_new(hist, json_pack("[I,I]",
					(json_int_t)(upper > INT64_MAX ? INT64_MAX : upper),
					(json_int_t)at->hist[b]));
		}
		json_object_set_new(arm, "linger_hist", hist);
		json_object_set_new(arms, stats_arm_name(a), arm);
	}
	return json_pack("{s:i,s:i,s:O,s:o}", "version", 1, "files", (int)t->files,
			 "processes", t->processes, "arms", arms);
}

static void print_json(const struct totals *t)
{
	json_t *obj = totals_json(t);

	json_dumpf(obj, out, JSON_COMPACT);
	fputc('\n', out);
	json_decref(obj);
}

static void per_100(char *text, size_t size, uint64_t part, uint64_t whole)
{
	if (whole)
		snprintf(text, size, "%.1f", 100.0 * (double)part / (double)whole);
	else
		snprintf(text, size, "-");
}

/* The modes and splits the processes ran with, each once. */
static void print_modes(const struct totals *t)
{
	json_t *seen = json_object(), *p;
	size_t i;

	fprintf(out, "%u files, %zu processes; mode, ab:", t->files, json_array_size(t->processes));
	json_array_foreach(t->processes, i, p) {
		char key[64];
		snprintf(key, sizeof key, "%s %lld%%",
			 json_string_value(json_object_get(p, "mode")) ?: "?",
			 json_integer_value(json_object_get(p, "ab")));
		if (!json_object_get(seen, key)) {
			fprintf(out, "%s %s", json_object_size(seen) ? "," : "", key);
			json_object_set_new(seen, key, json_true());
		}
	}
	fputc('\n', out);
	json_decref(seen);
}

static void print_table(const struct totals *t)
{
	const struct arm_total *l = &t->arm[SC_ARM_LINGER], *c = &t->arm[SC_ARM_CONTROL];
	char a[32], b[32];

	print_modes(t);
	fprintf(out, "%-22s %12s %12s\n", "", "linger", "control");
	for (unsigned i = 0; i < N_COUNTERS; i++)
		fprintf(out, "%-22s %12llu %12llu\n", counter_names[i],
		       (unsigned long long)l->counter[i], (unsigned long long)c->counter[i]);
	for (unsigned i = 1; i <= 2; i++) { /* abortive, at_risk */
		char name[32];
		snprintf(name, sizeof name, "%s per 100", counter_names[i]);
		per_100(a, sizeof a, l->counter[i], l->counter[0]);
		per_100(b, sizeof b, c->counter[i], c->counter[0]);
		fprintf(out, "%-22s %12s %12s\n", name, a, b);
	}
	static const unsigned ps[] = { 50, 99 };
	for (unsigned i = 0; i < 2; i++)
		fprintf(out, "linger_ms p%-11u %12llu %12llu\n", ps[i],
		       (unsigned long long)percentile(l, ps[i]),
		       (unsigned long long)percentile(c, ps[i]));
	fprintf(out, "%-22s %12llu %12llu\n", "linger_ms max", (unsigned long long)l->max_ms,
	       (unsigned long long)c->max_ms);
	if (l->counter[0] && c->counter[0])
		fprintf(out, "abortive per 100 closes, linger - control: %+.1f\n",
		       100.0 * (double)l->counter[1] / (double)l->counter[0] -
			       100.0 * (double)c->counter[1] / (double)c->counter[0]);
	else
		fprintf(out, "abortive per 100 closes, linger - control: - (an arm without closes)\n");
}

/* Prometheus text format. The linger times as a histogram in seconds (the
 * base unit promtool's lint asks for) with the power-of-two edges of the
 * shim's buckets, 1 ms to 2^23 ms: exact (each `le` is a bucket's upper
 * edge), a fixed set of series, and mergeable across hosts and over time,
 * which p50/p99 gauges are not. No _sum: the files do not carry the total
 * time, and an estimate would be a made-up number. */
static void print_prometheus(const struct totals *t)
{
	for (unsigned i = 0; i < N_COUNTERS; i++) {
		fprintf(out, "# HELP safeclose_%s_total %s\n# TYPE safeclose_%s_total counter\n",
		       counter_names[i], counter_help[i], counter_names[i]);
		for (int a = 0; a < SC_ARMS; a++)
			fprintf(out, "safeclose_%s_total{arm=\"%s\"} %llu\n", counter_names[i],
			       stats_arm_name(a), (unsigned long long)t->arm[a].counter[i]);
	}
	fprintf(out, "# HELP safeclose_linger_seconds How long each lingering close held its socket.\n"
	       "# TYPE safeclose_linger_seconds histogram\n");
	for (int a = 0; a < SC_ARMS; a++) {
		const struct arm_total *at = &t->arm[a];
		uint64_t below = 0, total = 0;
		unsigned b = 0;
		for (unsigned k = 0; k < STATS_BUCKETS; k++)
			total += at->hist[k];
		for (unsigned bits = 1; bits <= 23; bits++) {
			uint64_t edge = ((uint64_t)1 << bits) - 1;
			for (; b < STATS_BUCKETS && stats_bucket_upper(b) <= edge; b++)
				below += at->hist[b];
			fprintf(out, "safeclose_linger_seconds_bucket{arm=\"%s\",le=\"%llu.%03llu\"} %llu\n",
			       stats_arm_name(a), (unsigned long long)(edge / 1000),
			       (unsigned long long)(edge % 1000), (unsigned long long)below);
		}
		fprintf(out, "safeclose_linger_seconds_bucket{arm=\"%s\",le=\"+Inf\"} %llu\n"
		       "safeclose_linger_seconds_count{arm=\"%s\"} %llu\n",
		       stats_arm_name(a), (unsigned long long)total, stats_arm_name(a),
		       (unsigned long long)total);
	}
	fprintf(out, "# HELP safeclose_linger_max_seconds The longest lingering close.\n"
	       "# TYPE safeclose_linger_max_seconds gauge\n");
	for (int a = 0; a < SC_ARMS; a++)
		fprintf(out, "safeclose_linger_max_seconds{arm=\"%s\"} %llu.%03llu\n", stats_arm_name(a),
		       (unsigned long long)(t->arm[a].max_ms / 1000),
		       (unsigned long long)(t->arm[a].max_ms % 1000));
	fprintf(out, "# HELP safeclose_stats_files Stats files summed.\n"
	       "# TYPE safeclose_stats_files gauge\nsafeclose_stats_files %u\n", t->files);
}

bool report_sum(struct totals **result, char *const *paths, int n)
{
	struct totals *t = calloc(1, sizeof *t);
	bool ok = t != NULL;

	*result = t; /* NULL too: the caller frees what it gets either way */
	if (!t)
		return false;
	t->processes = json_array();
	for (int i = 0; i < n; i++)
		ok = add_path(t, paths[i]) && ok;
	return ok;
}

void report_print(const struct totals *t, enum report_format format, FILE *to)
{
	out = to;
	if (format == REPORT_JSON)
		print_json(t);
	else if (format == REPORT_PROMETHEUS)
		print_prometheus(t);
	else
		print_table(t);
	fflush(out);
}

void report_free(struct totals *t)
{
	if (t)
		json_decref(t->processes);
	free(t);
}

int report_main(int argc, char **argv)
{
	enum report_format format = REPORT_TABLE;
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0)
			format = REPORT_JSON;
		else if (strcmp(argv[i], "--prometheus") == 0)
			format = REPORT_PROMETHEUS;
		else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else
			break;
	}
	if (i == argc || argv[i][0] == '-') {
		fprintf(stderr, "usage: safeclose report [--json|--prometheus] FILE|DIR...\n");
		return 2;
	}
	struct totals *t;
	bool ok = report_sum(&t, argv + i, argc - i);
	if (ok)
		report_print(t, format, stdout);
	report_free(t);
	return ok ? 0 : 1;
}
