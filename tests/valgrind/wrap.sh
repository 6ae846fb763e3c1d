#!/bin/sh
# TEST_WRAPPER of `make valgrind`: wrap.sh TOOL PROGRAM [ARGS...] runs the
# program under valgrind's TOOL with the suppressions of this directory and
# a log of its own in $VG_LOGS (the harness's pid namespaces reuse pids, so
# %p alone would not be unique). A log that is not empty is a finding.
tool=$1
shift
log=$(mktemp "$VG_LOGS/$tool.XXXXXX") || exit 125
exec valgrind -q --tool="$tool" --suppressions="$(dirname "$0")/shim.supp" \
	--log-file="$log.%p" "$@"
