"""The Debian packages a test needs, and what it does when one is missing.

The packages are those tests/install-deps.sh installs (`make deps`, run by
`make check`). As root they are there, or the test fails: nothing is ever
skipped. An ordinary user cannot install them, and `make check` runs what it
can: a test that needs a missing package is reported as skipped, naming it.
(TEST_NO_SKIP=1, set by `make check-user`, fails it instead: that
run follows `make deps` and must run everything it selects.
TEST_PRETEND_MISSING="PKG ...": take those packages as not installed, here
and in install-deps.sh, so that tests/test_nonroot.py can show both ways.)
"""

import functools
import os
import re
import subprocess

import pytest

from harness.userns import AS_ROOT

INSTALL_DEPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "install-deps.sh")


@functools.lru_cache(maxsize=None)
def known():
    """Every package install-deps.sh may install (its need= lines)."""
    with open(INSTALL_DEPS) as f:
        text = f.read()
    return frozenset(" ".join(re.findall(r'^\w+="([^"$]*)"', text, re.M)).split())


@functools.lru_cache(maxsize=None)
def installed(package):
    if package in os.environ.get("TEST_PRETEND_MISSING", "").split():
        return False
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                       capture_output=True, text=True)
    return p.returncode == 0 and p.stdout.endswith(" installed")


def require(*packages):
    """Skip the calling test (an ordinary user) or fail it (root, or
    TEST_NO_SKIP) when one of packages is not installed."""
    unknown = [p for p in packages if p not in known()]
    assert not unknown, "%s not in %s: add them there" % (unknown, INSTALL_DEPS)
    missing = [p for p in packages if not installed(p)]
    if not missing:
        return
    what = "missing Debian package%s: %s" % ("s" if len(missing) > 1 else "", " ".join(missing))
    if AS_ROOT or os.environ.get("TEST_NO_SKIP"):
        pytest.fail("%s (make deps installs them)" % what, pytrace=False)
    pytest.skip("%s (as root, make deps installs them)" % what)


def require_root(reason):
    """For the few tests that only root can set up (a set-user-ID file of
    another user): skipped for an ordinary user, saying why."""
    if AS_ROOT:
        return
    if os.environ.get("TEST_NO_SKIP"):
        pytest.fail("needs root: %s" % reason, pytrace=False)
    pytest.skip("needs root: %s" % reason)
