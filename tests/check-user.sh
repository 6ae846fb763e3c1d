#!/bin/sh
# check-user.sh USER PYTEST-ARGS...: `make check-user`. Run by root, it
# shows that the tests need no root: it copies the tree (build/ included, so
# nothing is rebuilt that is up to date) into a directory of USER's own and
# runs pytest there as USER, through setpriv (USER's uid and gid, no
# supplementary group, no capability, a plain environment). Every namespace
# those tests make is then an ordinary user's (tests/harness/userns.py), and
# none of them may be skipped (TEST_NO_SKIP: make deps ran first).
# Run by anyone else it has nothing to add: the whole of make check ran as
# an ordinary user.
set -eu
user=$1
shift
if [ "$(id -u)" != 0 ]; then
	echo "check-user: not root (uid $(id -u)): make check ran as an ordinary user throughout"
	exit 0
fi
uid=$(id -u "$user")
gid=$(id -g "$user")
if [ "$uid" = 0 ]; then
	echo "check-user: $user is root; CHECK_USER must name an ordinary user" >&2
	exit 1
fi

top=$(mktemp -d /tmp/safeclose-check-user.XXXXXX)
trap 'rm -rf "$top"' EXIT
mkdir "$top/src"
tar -cf - --exclude=build/deb Makefile LICENSE README.md shim cmd tools man conf debian \
	tests test-apps bench build | tar -C "$top/src" -xf -
chown -R "$uid:$gid" "$top"

as_user() {
	setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all \
		env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$top" \
		USER="$user" LOGNAME="$user" LANG=C.UTF-8 TEST_NO_SKIP=1 "$@"
}
echo "check-user: as $(as_user id), in $top/src"
cd "$top/src"
as_user sh -c 'test "$(id -u)" != 0 && ! grep -q "^CapEff:.*[1-9a-f]" /proc/self/status' ||
	{ echo "check-user: still privileged" >&2; exit 1; }
as_user /usr/bin/python3 -m pytest -q -p no:cacheprovider --basetemp="$top/pytest" "$@"
