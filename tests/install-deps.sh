#!/bin/sh
# install-deps.sh [deb|bench]: installs, from Debian packages, what the build and the
# tests need and is missing. Run by `make check` and `make demo`. Needs root
# to install. An ordinary user is told what is missing: without a build
# package nothing can be built (exit 1); without a test package `make check`
# runs the rest, and what needs the package is reported as skipped, naming it
# (tests/harness/deps.py).
#
# install-deps.sh run PKG... -- COMMAND...: runs COMMAND, unless a PKG is
# missing and the caller is an ordinary user: then it says "skipped: COMMAND
# needs ..." and succeeds (the Makefile's targets run what they can so). As
# root COMMAND always runs (make deps came first; a missing package then
# fails it loudly instead of skipping it).
set -eu

build="gcc make libc6-dev libjansson-dev"
tests="clang libclang-rt-14-dev cppcheck libcmocka-dev prometheus python3 python3-pytest libpython3.11-testsuite iproute2 util-linux nginx-light nodejs ucspi-tcp wrk php-cli strace mandoc systemd tcpdump gunicorn"
# `make deb` needs the packaging tools too; `make bench` its plotter and
# `make bench-profile` perf (neither is needed by `make check`).
deb="dpkg-dev debhelper fakeroot lintian man-db"
bench="gnuplot-nox linux-perf"

# TEST_PRETEND_MISSING="PKG ...": taken as not installed (tests/test_nonroot.py).
missing_of() {
	for pkg in "$@"; do
		case " ${TEST_PRETEND_MISSING:-} " in *" $pkg "*) printf ' %s' "$pkg"; continue ;; esac
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || printf ' %s' "$pkg"
	done
}

if [ "${1:-}" = run ]; then
	shift
	pkgs=""
	while [ "$1" != -- ]; do pkgs="$pkgs $1"; shift; done
	shift
	missing=$(missing_of $pkgs)
	[ -z "$missing" ] || [ "$(id -u)" = 0 ] && exec "$@"
	echo "skipped: $* (missing Debian packages:$missing; as root, make deps installs them)" >&2
	exit 0
fi

need="$build $tests"
[ "${1:-}" = deb ] && need="$need $deb"
[ "${1:-}" = bench ] && need="$need $bench"
missing=$(missing_of $need)
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing Debian packages:$missing (as root, make deps installs them)" >&2
	vital=$build
	[ "${1:-}" = deb ] && vital="$vital $deb"
	nogo=$(missing_of $vital)
	if [ -n "$nogo" ]; then
		echo "install-deps: cannot go on without$nogo" >&2
		exit 1
	fi
	echo "install-deps: what needs them is skipped" >&2
	exit 0
fi
echo "install-deps: installing$missing"
# Packaged servers (nginx) must not start as system services: the tests run
# their own copies inside private network namespaces.
policy=/usr/sbin/policy-rc.d
created_policy=""
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' > "$policy"
	chmod +x "$policy"
	created_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
[ -n "$created_policy" ] && rm -f "$policy"
exit 0
