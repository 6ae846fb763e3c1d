#!/bin/sh
# deb-check.sh DIR: what `make deb` checks of the packages it built in DIR:
# lintian finds no error, and they install with dpkg -i and work from the
# installed paths: `safeclose -- PROGRAM` preloads the installed library and
# /etc/safeclose.conf is read. The install happens in a mount namespace of
# its own, over overlays of /usr, /etc and /var, so the machine is untouched.
set -eu
dir=$(cd "$1" && pwd)

lintian --fail-on error --tag-display-limit 0 "$dir"/*.changes

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unshare -m sh -eu -c '
	work=$1 dir=$2
	for d in usr etc var; do
		mkdir -p "$work/$d.up" "$work/$d.work"
		mount -t overlay overlay -o "lowerdir=/$d,upperdir=$work/$d.up,workdir=$work/$d.work" "/$d"
	done
	dpkg -i "$dir"/libsafeclose_*.deb "$dir"/safeclose_*.deb >/dev/null
	lib=$(dpkg -L libsafeclose | grep "/safeclose/libsafeclose.so$")
	test -f /etc/safeclose.conf
	dpkg-query -W -f="\${Conffiles}\n" libsafeclose | grep -q " /etc/safeclose.conf "
	out=$(cd / && safeclose -- sh -c "echo \"\$LD_PRELOAD\"")
	test "$out" = "$lib" || { echo "deb-check: LD_PRELOAD is \"$out\", not $lib" >&2; exit 1; }
	printf "log = info\n" >> /etc/safeclose.conf
	safeclose -- /bin/true 2>&1 | grep -q "loaded: mode pending" ||
		{ echo "deb-check: the installed library did not read /etc/safeclose.conf" >&2; exit 1; }
	safeclose --check >/dev/null
	man -w safeclose >/dev/null && man -w 7 libsafeclose >/dev/null
	dpkg -r safeclose libsafeclose >/dev/null
	test ! -e "$lib" && test ! -e /usr/bin/safeclose
' sh "$work" "$dir"
echo "deb-check: lintian clean of errors; installed, ran and removed: $(cd "$dir" && ls *.deb | tr '\n' ' ')"
