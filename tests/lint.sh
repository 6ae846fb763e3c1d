#!/bin/sh
# lint.sh CC BUILD: static analysis of shim/, cmd/ and tools/, every finding
# fatal (run by `make lint`, part of `make check`). The three tools run side
# by side (~50 s on two cores); each one's findings are printed whole.
#  - gcc -fanalyzer, with the build's warnings and -Werror;
#  - cppcheck (warning, performance, portability); where it is wrong, the
#    line carries a cppcheck-suppress comment with the reason;
#  - clang --analyze (-analyzer-werror); rawsys.h gives it libc's syscall()
#    in place of the inline assembly, whose writes it cannot see.
set -u
cc=$1 build=$2
std="-std=gnu11 -D_GNU_SOURCE"
warn="-Wall -Wextra -Werror -Wshadow -Wmissing-prototypes"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

each() { # each TOOL-COMMAND...: runs it on every source, its own flags for cmd/ and tools/
	for f in shim/*.c; do "$@" -fPIC "$f" || return 1; done
	for f in cmd/*.c tools/*.c; do "$@" -include "$build/paths.h" "$f" || return 1; done
}
gcc_an() { "$cc" $std $warn -O2 -fanalyzer -Ishim -c -o /dev/null "$@"; }
clang_an() { clang --analyze -Xclang -analyzer-werror $std -Ishim -o /dev/null "$@"; }

each gcc_an >"$tmp/gcc" 2>&1 & g=$!
each clang_an >"$tmp/clang" 2>&1 & c=$!
cppcheck --enable=warning,performance,portability --error-exitcode=1 --inline-suppr -q \
	--std=c11 -D_GNU_SOURCE -D__x86_64__ -D__linux__ -Ishim -I"$build" shim cmd tools \
	>"$tmp/cppcheck" 2>&1
p=$?
wait $g; g=$?
wait $c; c=$?
rc=0
for t in gcc:$g clang:$c cppcheck:$p; do
	name=${t%:*} status=${t#*:}
	if [ "$status" = 0 ]; then
		echo "lint: $name: no findings"
	else
		cat "$tmp/$name"
		echo "lint: $name: findings (above)" >&2
		rc=1
	fi
done
exit $rc
