/* test_stats.c: the classifier (pure, and on real loopback connections under
 * observe), the A/B split (stable, agrees with tests/harness/split.py, near
 * P %), the linger-time histogram and its percentiles, and the JSON the
 * stats file holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "decide.h"
#include "probe.h"
#include "loopback.h"
#include "split.h"
#include "stats.h"
#include "self.h"
#include "statsfile.h"

static void classifier_follows_the_kernel_rule(void **state)
{
	(void)state;
	assert_int_equal(stats_classify(1, 0), SC_CLASS_ABORTIVE);
	assert_int_equal(stats_classify(1, 1), SC_CLASS_ABORTIVE); /* unsent output is dropped */
	assert_int_equal(stats_classify(0, 1), SC_CLASS_AT_RISK);
	assert_int_equal(stats_classify(0, 0), SC_CLASS_CLEAN);
}

/* Releases p.server under observe; the control arm's counters after it. */
static void observe_release(int fd, struct sc_arm_counts *after)
{
	enum sc_arm arm = SC_ARM_LINGER;

	assert_false(decide_release(SC_MODE_OBSERVE, fd, probe_cookie(fd), &arm));
	assert_int_equal(arm, SC_ARM_CONTROL);
	stats_snapshot(SC_ARM_CONTROL, after);
}

static void observe_classifies_real_connections_and_never_lingers(void **state)
{
	(void)state;
	struct tcp_pair p;
	struct sc_arm_counts c;
	char big[1 << 16] = { 0 };
	int small = 4096;

	stats_reset();
	sc_cfg.stats_path = "counted"; /* releases are counted only for a stats file */
	/* Clean: nothing unread, everything acknowledged. */
	assert_int_equal(tcp_pair_open(&p), 0);
	assert_int_equal(write(p.server, "OK\n", 3), 3);
	assert_true(wait_acknowledged(p.server));
	observe_release(p.server, &c);
	assert_int_equal(c.clean, 1);
	tcp_pair_close(&p);

	/* Abortive: the next request is unread. */
	assert_int_equal(tcp_pair_open(&p), 0);
	assert_int_equal(write(p.client, "GET 2\n", 6), 6);
	assert_true(wait_input(p.server, 6));
	observe_release(p.server, &c);
	assert_int_equal(c.abortive, 1);
	tcp_pair_close(&p);

	/* At risk: the peer reads nothing, so output waits in our queue. */
	assert_int_equal(tcp_pair_open(&p), 0);
	setsockopt(p.client, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	fcntl(p.server, F_SETFL, O_NONBLOCK);
	while (write(p.server, big, sizeof big) > 0)
		;
	observe_release(p.server, &c);
	assert_int_equal(c.at_risk, 1);
	tcp_pair_close(&p);

	/* Not connected, not TCP: not a release the kernel could reset. */
	int listener = tcp_listener(), unixfd[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, unixfd), 0);
	enum sc_arm arm;
	assert_false(decide_release(SC_MODE_OBSERVE, listener, probe_cookie(listener), &arm));
	assert_false(decide_release(SC_MODE_OBSERVE, unixfd[0], probe_cookie(unixfd[0]), &arm));
	stats_snapshot(SC_ARM_CONTROL, &c);
	assert_int_equal(c.closes, 3);
	assert_int_equal(c.closes, c.abortive + c.at_risk + c.clean);
	assert_int_equal(c.lingered + c.fallback, 0);
	stats_snapshot(SC_ARM_LINGER, &c);
	assert_int_equal(c.closes, 0);
	/* Without a stats file nothing is counted (and nothing asked for it). */
	sc_cfg.stats_path = NULL;
	assert_int_equal(tcp_pair_open(&p), 0);
	observe_release(p.server, &c);
	assert_int_equal(c.closes, 3);
	tcp_pair_close(&p);
	close(listener);
	close(unixfd[0]);
	close(unixfd[1]);
}

static struct sockaddr_in v4(const char *addr, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	inet_pton(AF_INET, addr, &a.sin_addr);
	return a;
}

static struct sockaddr_in6 v6(const char *addr, int port)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };

	inet_pton(AF_INET6, addr, &a.sin6_addr);
	return a;
}

static void split_hash_is_stable_and_matches_the_python_helper(void **state)
{
	(void)state;
	struct sockaddr_in srv = v4("127.0.0.1", 8080), cli = v4("127.0.0.1", 40000);
	struct sockaddr_in6 srv6 = v6("::1", 8080), cli6 = v6("::1", 40000);
	struct sockaddr_in6 msrv = v6("::ffff:127.0.0.1", 8080), mcli = v6("::ffff:127.0.0.1", 40000);

	/* The values tests/harness/split.py computes for the same endpoints. */
	assert_true(split_hash((void *)&srv, (void *)&cli) == 0xd0fdcf3215b54f36ull);
	assert_true(split_hash((void *)&srv6, (void *)&cli6) == 0xed6a8ce83cbd4437ull);
	assert_true(split_hash((void *)&msrv, (void *)&mcli) == 0xd0fdcf3215b54f36ull);
	/* Which side is local matters (it is always the server's view). */
	assert_true(split_hash((void *)&cli, (void *)&srv) != 0xd0fdcf3215b54f36ull);
}

/* Share of the linger arm over `n` client ports, in tenths of a percent. */
static long linger_share(long percent, int n)
{
	struct sockaddr_in srv = v4("10.0.0.1", 443);
	long linger = 0;

	for (int i = 0; i < n; i++) {
		struct sockaddr_in cli = v4(i % 2 ? "192.168.1.7" : "10.0.0.2", 32768 + i);
		linger += split_arm_of(split_hash((void *)&srv, (void *)&cli), percent) ==
			  SC_ARM_LINGER;
	}
	return linger * 1000 / n;
}

static void split_lands_near_the_percentage(void **state)
{
	(void)state;
	assert_int_equal(linger_share(0, 20000), 0);
	assert_int_equal(linger_share(100, 20000), 1000);
	long half = linger_share(50, 20000), tenth = linger_share(10, 20000);
	assert_in_range(half, 485, 515);
	assert_in_range(tenth, 90, 110);
	/* Monotonic: a connection in the linger arm at P stays there above P. */
	struct sockaddr_in srv = v4("10.0.0.1", 443);
	for (int port = 40000; port < 41000; port++) {
		struct sockaddr_in cli = v4("10.0.0.2", port);
		uint64_t h = split_hash((void *)&srv, (void *)&cli);
		for (long p = 0; p < 100; p++)
			if (split_arm_of(h, p) == SC_ARM_LINGER)
				assert_int_equal(split_arm_of(h, p + 1), SC_ARM_LINGER);
	}
}

static void split_of_a_socket_needs_no_call_at_0_and_100(void **state)
{
	(void)state;
	/* -1 is no socket: the bounds are answered without asking. */
	assert_int_equal(split_arm(-1, 100), SC_ARM_LINGER);
	assert_int_equal(split_arm(-1, 0), SC_ARM_CONTROL);
	assert_int_equal(split_arm(-1, 50), SC_ARM_CONTROL); /* no addresses: control */
	struct tcp_pair p;
	assert_int_equal(tcp_pair_open(&p), 0);
	struct sockaddr_in local, peer;
	socklen_t l1 = sizeof local, l2 = sizeof peer;
	getsockname(p.server, (void *)&local, &l1);
	getpeername(p.server, (void *)&peer, &l2);
	assert_int_equal(split_arm(p.server, 37),
			 split_arm_of(split_hash((void *)&local, (void *)&peer), 37));
	tcp_pair_close(&p);
}

static void histogram_buckets_bound_every_time(void **state)
{
	(void)state;
	for (uint64_t ms = 0; ms < 200000; ms++) {
		unsigned b = stats_bucket(ms);
		uint64_t upper = stats_bucket_upper(b);
		assert_true(b < STATS_BUCKETS);
		assert_true(upper >= ms);
		assert_true(upper <= ms + ms / 4 + 1);
		assert_true(b == 0 || stats_bucket_upper(b - 1) < ms);
	}
	assert_int_equal(stats_bucket(UINT64_MAX), STATS_BUCKETS - 1);
}

static void percentiles_from_the_histogram(void **state)
{
	(void)state;
	uint64_t hist[STATS_BUCKETS] = { 0 };

	assert_int_equal(stats_percentile(hist, 50, 0), 0);
	for (uint64_t ms = 1; ms <= 1000; ms++)
		hist[stats_bucket(ms)]++;
	uint64_t p50 = stats_percentile(hist, 50, 1000), p99 = stats_percentile(hist, 99, 1000);
	assert_in_range(p50, 500, 625);
	assert_in_range(p99, 990, 1000); /* never above the max */
	assert_int_equal(stats_percentile(hist, 100, 1000), 1000);
	/* One slow linger among many fast ones shows in p99 only at 1 %. */
	memset(hist, 0, sizeof hist);
	hist[stats_bucket(3)] = 99;
	hist[stats_bucket(30000)] = 1;
	assert_int_equal(stats_percentile(hist, 50, 30000), 3);
	assert_int_equal(stats_percentile(hist, 99, 30000), 3);
	assert_int_equal(stats_percentile(hist, 100, 30000), 30000);
}

static void linger_ends_are_counted_per_arm(void **state)
{
	(void)state;
	struct sc_arm_counts c;

	stats_reset();
	stats_count_lingered(SC_ARM_LINGER);
	stats_count_lingered(SC_ARM_LINGER);
	stats_count_fallback(SC_ARM_LINGER);
	stats_count_linger_end(SC_ARM_LINGER, LINGER_PEER_DONE, 12, 100);
	stats_count_linger_end(SC_ARM_LINGER, LINGER_IDLE, 5000, 0);
	stats_snapshot(SC_ARM_LINGER, &c);
	assert_int_equal(c.lingered, 2);
	assert_int_equal(c.fallback, 1);
	assert_int_equal(c.peer_finished, 1);
	assert_int_equal(c.idle_timeout, 1);
	assert_int_equal(c.bytes_discarded, 100);
	assert_int_equal(c.linger_max_ms, 5000);
	stats_snapshot(SC_ARM_CONTROL, &c);
	assert_int_equal(c.lingered + c.peer_finished, 0);
}

static char stats_dir[] = "/tmp/test_stats.XXXXXX";

static void the_json_names_every_counter_of_both_arms(void **state)
{
	(void)state;
	char buf[2048], path[128];
	const char *keys[] = { "\"version\": 1", "\"pid\": ", "\"program\": \"test_stats\"",
			       "\"mode\": ", "\"ab\": ", "\"started\": ", "\"written\": ",
			       "\"arms\": {\"linger\": {\"closes\": ", "\"control\": {\"closes\": ",
			       "\"abortive\"", "\"at_risk\"", "\"clean\"", "\"lingered\"",
			       "\"fallback\"", "\"peer_finished\"", "\"idle_timeout\"",
			       "\"total_timeout\"", "\"bytes_discarded\"",
			       "\"linger_ms\": {\"p50\": ", "\"p99\": ", "\"max\": " };
	assert_non_null(mkdtemp(stats_dir));
	snprintf(path, sizeof path, "%s/s.%%p.json", stats_dir);
	statsfile_init(path, 0);
	size_t len = statsfile_format(buf, sizeof buf);

	assert_true(len < sizeof buf - 1);
	buf[len] = '\0';
	for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++)
		if (!strstr(buf, keys[i]))
			fail_msg("no %s in %s", keys[i], buf);
	assert_int_equal(buf[len - 1], '\n');
	assert_null(strstr(buf, "\"started\": 0.")); /* the clock started at init */
}

/* The file is renamed into place (no temporary left), under the pid. */
static void the_file_is_written_whole_under_the_pid(void **state)
{
	(void)state;
	char path[160], buf[2048];

	statsfile_write();
	snprintf(path, sizeof path, "%s/s.%d.json", stats_dir, (int)getpid());
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"version\": 1"));
	assert_int_equal(buf[n - 1], '\n');
	/* The same process started again on it (execve): its counts go on. */
	struct sc_arm_counts before, after;
	stats_count_release(SC_ARM_CONTROL, SC_CLASS_ABORTIVE);
	stats_count_linger_end(SC_ARM_LINGER, LINGER_TIMEOUT, 30000, 7);
	statsfile_write();
	stats_snapshot(SC_ARM_LINGER, &before);
	stats_reset();
	statsfile_init(path, 0);
	stats_snapshot(SC_ARM_LINGER, &after);
	assert_memory_equal(&before, &after, sizeof before);
	stats_snapshot(SC_ARM_CONTROL, &after);
	assert_int_equal(after.abortive, 1);
	unlink(path);
	snprintf(path, sizeof path, "%s/s.%%p.json", stats_dir);
	statsfile_init(path, 0);
	assert_int_equal(rmdir(stats_dir), 0); /* nothing else was left there */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(classifier_follows_the_kernel_rule),
		cmocka_unit_test(observe_classifies_real_connections_and_never_lingers),
		cmocka_unit_test(split_hash_is_stable_and_matches_the_python_helper),
		cmocka_unit_test(split_lands_near_the_percentage),
		cmocka_unit_test(split_of_a_socket_needs_no_call_at_0_and_100),
		cmocka_unit_test(histogram_buckets_bound_every_time),
		cmocka_unit_test(percentiles_from_the_histogram),
		cmocka_unit_test(linger_ends_are_counted_per_arm),
		cmocka_unit_test(the_json_names_every_counter_of_both_arms),
		cmocka_unit_test(the_file_is_written_whole_under_the_pid),
	};
	sc_self_init(); /* the writer writes only in the process the shim follows */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
