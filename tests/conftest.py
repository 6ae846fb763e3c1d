"""Shared fixtures for the A/B integration scenarios.

Every scenario is a spec for tests/harness/scenario.py, which runs it inside a
fresh network namespace (its own loopback, rate limit and TCP counters; see
harness/netns.py). `ab` runs a spec twice: without the shim and with
LD_PRELOAD=libsafeclose.so on the server (never on the clients). The checks of
both outcomes live in harness/checks.py so every test asserts the same things.

Root and an ordinary user run the same tests: the namespaces of an ordinary
user are made inside a user namespace of its own (harness/userns.py). A test
marked needs("PKG", ...) (and every namespace fixture, which needs ip, tc and
tcpdump) is skipped for an ordinary user when a package is missing, naming
it; as root it is never skipped (harness/deps.py).
"""

import copy
import json
import os
import subprocess
from types import SimpleNamespace

import pytest

from harness import deps
from harness.netns import run_in_namespace

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIG_SIZE = 2_000_000
# What every namespace scenario runs: ip and tc, tcpdump for the RSTs.
NETNS_PACKAGES = ("iproute2", "tcpdump")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(*packages): the Debian packages the test "
                            "runs (skipped for an ordinary user when one is missing)")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs"):
        deps.require(*mark.args)


@pytest.fixture(scope="session")
def build():
    """Build everything once; the paths of what the tests run."""
    p = subprocess.run(["make", "-C", REPO, "all"], capture_output=True,
                       text=True, timeout=600)
    if p.returncode != 0:
        pytest.fail("make -C %s all failed (rc %d):\n%s\n%s"
                    % (REPO, p.returncode, p.stdout[-4000:], p.stderr[-4000:]),
                    pytrace=False)
    # TEST_PRELOAD (the Makefile's sanitized-* targets): what LD_PRELOAD holds
    # for the runs with the shim, a sanitizer's runtime first, the library last.
    preload = os.environ.get("TEST_PRELOAD") or os.path.join(REPO, "build", "libsafeclose.so")
    paths = SimpleNamespace(
        repo=REPO,
        shim=preload,
        shim_lib=preload.split(":")[-1],
        pipeserver=os.path.join(REPO, "build", "pipeserver"),
        pipeclient=os.path.join(REPO, "build", "pipeclient"),
        quietserver=os.path.join(REPO, "build", "quietserver"),
    )
    missing = [p for p in (paths.shim_lib, paths.pipeserver, paths.pipeclient, paths.quietserver)
               if not os.path.isfile(p)]
    if missing:
        pytest.fail("make all did not produce %s" % missing, pytrace=False)
    return paths


def _netns_run(spec):
    result = run_in_namespace(spec)
    if result["errors"]:
        pytest.fail("scenario did not run as specified: %s\nfull result:\n%s"
                    % (result["errors"], json.dumps(result, indent=1)), pytrace=False)
    return result


@pytest.fixture
def netns_run():
    """run(spec) -> result dict, in a fresh network namespace (a namespace
    that cannot be made, or a scenario that hangs, fails the test; skipped
    only for an ordinary user without the NETNS_PACKAGES)."""
    deps.require(*NETNS_PACKAGES)
    return _netns_run


@pytest.fixture
def ab(build):
    """ab(spec) -> (without, with_): the same spec run without, then with the shim."""
    deps.require(*NETNS_PACKAGES)
    def run(spec):
        without = copy.deepcopy(spec)
        without["server"]["preload"] = None
        with_ = copy.deepcopy(spec)
        with_["server"]["preload"] = build.shim
        return _netns_run(without), _netns_run(with_)
    return run


@pytest.fixture(scope="session")
def http_docroot(tmp_path_factory):
    """A directory holding big.bin, BIG_SIZE bytes."""
    root = tmp_path_factory.mktemp("docroot")
    (root / "big.bin").write_bytes(os.urandom(BIG_SIZE))
    return root


@pytest.fixture
def noharm(build):
    """noharm(name, *args, env=None, shim_env=None, nofile=None) -> (plain, shimmed):
    build/<name> run without and with the shim (harness/noharm.py), and
    already checked to have seen the same thing."""
    from harness import noharm as nh
    deps.require("iproute2")

    def run(name, *args, env=None, shim_env=None, timeout=60, check=True, nofile=None):
        argv = [os.path.join(build.repo, "build", name)] + [str(a) for a in args]
        plain, shimmed = nh.run_pair(build.shim, argv, env, shim_env, timeout, nofile=nofile)
        if check:
            nh.assert_same(plain, shimmed)
        return plain, shimmed
    return run
