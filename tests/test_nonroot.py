"""Root and an ordinary user run the same tests (harness/userns.py); what
differs is a missing Debian package (harness/deps.py, install-deps.sh): an
ordinary user cannot install it, so what needs it is skipped, naming it,
and the rest runs; root installed it first (make deps), so for root the
same test fails. `make check` runs this file as root, and `make check-user`
again as an ordinary user: each asserts its own side. A package is made
missing by TEST_PRETEND_MISSING (nothing is removed from the machine)."""

import os
import subprocess

from harness.userns import AS_ROOT

# A quick test of its own that needs one package (promtool, from prometheus).
NEEDS_PROMETHEUS = "tests/test_report.py::test_prometheus_passes_promtool"


def env_missing(packages):
    env = {k: v for k, v in os.environ.items() if k != "TEST_NO_SKIP"}
    env["TEST_PRETEND_MISSING"] = packages
    return env


def test_a_test_whose_package_is_missing(build, tmp_path):
    p = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider",
                        "--basetemp=%s" % (tmp_path / "inner"), NEEDS_PROMETHEUS],
                       cwd=build.repo, env=env_missing("prometheus"), capture_output=True,
                       text=True, timeout=120)
    if AS_ROOT:
        assert p.returncode == 1, p.stdout
        assert "1 error" in p.stdout     # failed in its setup
        assert "missing Debian package: prometheus (make deps installs them)" in p.stdout
    else:
        assert p.returncode == 0, p.stdout
        assert "1 skipped" in p.stdout
        assert "missing Debian package: prometheus (as root, make deps installs them)" \
            in p.stdout
    # Without the pretence it runs, either way.
    p = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--basetemp=%s" % (tmp_path / "inner2"), NEEDS_PROMETHEUS],
                       cwd=build.repo, env=env_missing(""), capture_output=True,
                       text=True, timeout=120)
    assert (p.returncode, "1 passed" in p.stdout) == (0, True), p.stdout


def install_deps(*args, missing, as_user=False):
    """tests/install-deps.sh ARGS as we are, or (as_user, from root) as
    nobody: it only reads, so root's tree does."""
    user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] \
        if as_user and AS_ROOT else []
    return subprocess.run(user + ["sh", "tests/install-deps.sh"] + list(args),
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          env=env_missing(missing), capture_output=True, text=True, timeout=60)


def test_a_target_whose_package_is_missing():
    if AS_ROOT:
        p = install_deps("run", "wrk", "--", "echo", "ran", missing="wrk")
        assert (p.returncode, p.stdout, p.stderr) == (0, "ran\n", "")
    p = install_deps("run", "wrk", "--", "echo", "ran", missing="wrk", as_user=True)
    assert (p.returncode, p.stdout) == (0, "")
    assert p.stderr == ("skipped: echo ran (missing Debian packages: wrk; "
                        "as root, make deps installs them)\n")
    p = install_deps("run", "wrk", "--", "echo", "ran", missing="", as_user=True)
    assert (p.returncode, p.stdout, p.stderr) == (0, "ran\n", "")


def test_what_an_ordinary_user_is_told_is_missing():
    p = install_deps(missing="wrk nodejs", as_user=True)
    assert p.returncode == 0
    assert p.stderr == ("install-deps: missing Debian packages: nodejs wrk "
                        "(as root, make deps installs them)\n"
                        "install-deps: what needs them is skipped\n")
    # Without a build package nothing can be built.
    p = install_deps(missing="libjansson-dev wrk", as_user=True)
    assert p.returncode == 1
    assert p.stderr.endswith("install-deps: cannot go on without libjansson-dev\n")
