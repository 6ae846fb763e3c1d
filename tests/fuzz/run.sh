#!/bin/sh
# run.sh NAME SECONDS: runs libFuzzer target build-fuzz/fuzz_NAME (from
# tests/fuzz/fuzz_NAME.c) for SECONDS from its seed corpus
# (tests/fuzz/corpus/NAME, read only) and what earlier runs found
# (build-fuzz/corpus/NAME, where new inputs go). Prints the
# run's final stats; on a finding, the report and the input's file
# (build-fuzz/NAME-crash-*), and fails.
set -eu
t=$1 secs=$2
out=build-fuzz/corpus/$t log=build-fuzz/$t.log
mkdir -p "$out"
echo "== fuzz $t, $secs s"
# -close_fd_mask=2: the shim's line about a bad value (most inputs have
# one) stays out of the log; a failed property is written on a copy of
# stderr the target keeps (tests/fuzz/check.h), sanitizer reports too.
if ! "build-fuzz/fuzz_$t" -max_total_time="$secs" -close_fd_mask=2 -print_final_stats=1 \
	-dict=tests/fuzz/settings.dict -artifact_prefix="build-fuzz/$t-" \
	"$out" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
	grep -v '^#[0-9]' "$log" | tail -60
	echo "fuzz $t: finding, input in build-fuzz/$t-*" >&2
	exit 1
fi
grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log" | tr '\n' ' '
echo
