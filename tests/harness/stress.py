"""Run a stress program (test-apps/storm.c, sigstorm.c, forkbooks.c) in a
network namespace of its own whose loopback is rate-limited, as the
scenarios' is (harness/netns.py): the replies queue up, so a reset loses
them. The programs are their own servers and clients and print their counts
as JSON lines; run() returns them parsed.

STRESS_SCALE (the Makefile's `stress` target: 10) multiplies the iterations
each test asks for: the same tests, longer; a fraction (`tsan-stress`: 0.25)
makes them shorter, at least one iteration each.
"""

import json
import os
import subprocess
from types import SimpleNamespace

from harness import noharm

RATE = "200mbit"
LIMITED = ["unshare", "--net", "sh", "-c",
           'ip link set lo up mtu 1500 && '
           'tc qdisc add dev lo root tbf rate "$0" burst 200kb latency 2s && exec "$@"']


def factor():
    return float(os.environ.get("STRESS_SCALE", "1"))


def scale(n):
    return max(1, int(n * factor()))


def fork_ms():
    """What a fork of a stress program may take, in ms: STRESS_FORK_MS, 25
    by default (enough under ASan); `tsan-stress` sets it higher, since a
    fork under TSan takes a few hundred ms here."""
    return int(os.environ.get("STRESS_FORK_MS", "25"))


def under_tsan(build):
    """The runs with the shim load ThreadSanitizer's runtime too (TEST_PRELOAD)."""
    return "libtsan" in build.shim


def run(build, name, *args, preload=None, env=None, rate=RATE, timeout=120):
    """build/<name> args..., LD_PRELOAD=preload when given; its JSON lines
    (a list of dicts) with rc, stdout and stderr. A hang is a failure: the run
    is killed at timeout (rc "timeout ...")."""
    argv = LIMITED + [rate, os.path.join(build.repo, "build", name)] + [str(a) for a in args]
    env = dict(env or {})
    if preload:
        env["LD_PRELOAD"] = preload
        argv = LIMITED + [rate] + noharm.test_wrapper() + argv[len(LIMITED) + 1:]
    p = noharm.run_once(argv, env, timeout=timeout, netns=False)
    lines = []
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    return SimpleNamespace(rc=p.returncode, lines=lines, stdout=p.stdout, stderr=p.stderr)


def ab(build, name, *args, env=None, shim_env=None, **kw):
    """(without, with_): the same program without, then with the shim."""
    with_env = dict(env or {})
    with_env.update(shim_env or {})
    return (run(build, name, *args, env=env, **kw),
            run(build, name, *args, preload=build.shim, env=with_env, **kw))


def one(result, key=None):
    """The one JSON line (with key set, when given) of a run."""
    found = [l for l in result.lines if key is None or l.get(key)]
    assert len(found) == 1 and result.rc == 0, describe(result)
    return found[0]


def describe(result):
    return "rc %s\nstdout:\n%s\nstderr:\n%s" % (result.rc, result.stdout, result.stderr[-4000:])
