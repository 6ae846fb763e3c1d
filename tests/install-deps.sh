#!/bin/sh
# install-deps.sh [deb|bench]: installs, from Debian packages, what the build and the
# tests need and is missing. Run by `make check` and `make demo`. Needs root
# to install; without root it only says what is missing.
set -eu

need="gcc make clang libclang-rt-14-dev cppcheck libc6-dev libcmocka-dev libjansson-dev prometheus python3 python3-pytest libpython3.11-testsuite iproute2 util-linux nginx-light nodejs ucspi-tcp wrk php-cli strace mandoc systemd tcpdump"
# `make deb` needs the packaging tools too; `make bench` its plotter and
# `make bench-profile` perf (neither is needed by `make check`).
[ "${1:-}" = deb ] && need="$need dpkg-dev debhelper fakeroot lintian man-db"
[ "${1:-}" = bench ] && need="$need gnuplot-nox linux-perf"
missing=""
for pkg in $need; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing Debian packages:$missing (run as root to install them)" >&2
	exit 1
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
