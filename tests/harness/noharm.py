"""Run one small program without and with the shim and compare what it saw.

The conformance suite's programs (test-apps/nh_*.c) print what they observe,
one fact a line: return values and errno names, what a peer received, exit
status of children, and coarse timing ("returned at once" / "blocked"), never
raw numbers that differ from run to run. run_pair() runs such a program twice
with the same arguments; assert_same() is the one comparison every no-harm
test makes: same exit status, same stdout, and nothing from the shim on
stderr (a log line is a behaviour change of its own).
"""

import os
import resource
import shlex
import subprocess
from types import SimpleNamespace

from harness.userns import unshare

# Where a program of the suite runs: its own network namespace (a private
# loopback and counters), so that tests in parallel never share ports; as an
# ordinary user inside a user namespace of its own (harness/userns.py).
NETNS = unshare("--net") + ["sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def _env(extra):
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("SAFECLOSE_")}
    env.update(extra or {})
    return env


def _soft_nofile(limit):
    """A preexec_fn that starts the run under a soft RLIMIT_NOFILE of limit
    (None: as inherited), so that everything in it starts under that limit."""
    if limit is None:
        return None

    def lower():
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    return lower


def test_wrapper():
    """TEST_WRAPPER (the Makefile's valgrind target): a command line put in
    front of every program run with the shim, e.g. valgrind and its options."""
    return shlex.split(os.environ.get("TEST_WRAPPER", ""))


def run_once(argv, env=None, timeout=60, netns=True, nofile=None):
    """One run; a CompletedProcess with text output (never raises on rc)."""
    full = (NETNS if netns else []) + list(argv)
    try:
        return subprocess.run(full, env=_env(env), capture_output=True,
                              text=True, timeout=timeout, preexec_fn=_soft_nofile(nofile))
    except subprocess.TimeoutExpired as e:
        return SimpleNamespace(returncode="timeout after %ss" % timeout,
                               stdout=(e.stdout or b"").decode(errors="replace")
                               if isinstance(e.stdout, bytes) else (e.stdout or ""),
                               stderr=(e.stderr or b"").decode(errors="replace")
                               if isinstance(e.stderr, bytes) else (e.stderr or ""))


def run_pair(shim, argv, env=None, shim_env=None, timeout=60, netns=True, nofile=None):
    """(plain, shimmed): argv run without, then with LD_PRELOAD=shim.
    env goes to both runs, shim_env only to the second; nofile: the soft
    RLIMIT_NOFILE both start under."""
    plain = run_once(argv, env, timeout, netns, nofile)
    with_env = dict(env or {})
    with_env.update(shim_env or {})
    with_env["LD_PRELOAD"] = shim
    shimmed = run_once(test_wrapper() + list(argv), with_env, timeout, netns, nofile)
    return plain, shimmed


def assert_same(plain, shimmed, allow_stderr=False):
    """The program saw the same thing without and with the shim."""
    detail = ("\n--- without the shim (rc %s):\n%s\n%s\n--- with the shim (rc %s):\n%s\n%s"
              % (plain.returncode, plain.stdout, plain.stderr,
                 shimmed.returncode, shimmed.stdout, shimmed.stderr))
    assert plain.returncode == shimmed.returncode, "exit status differs" + detail
    assert plain.stdout == shimmed.stdout, "output differs" + detail
    if not allow_stderr:
        assert "safeclose" not in shimmed.stderr, "the shim wrote to stderr" + detail
    assert plain.stdout.strip(), "the program printed nothing" + detail
