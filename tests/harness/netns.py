"""Run a scenario spec in a fresh network namespace; the shared link settings.

run_in_namespace(spec) starts tests/harness/scenario.py as the only program of
new network and pid namespaces and returns its result dict (see scenario.py
for the spec and the result). It never raises for a scenario that went wrong:
a runner that hung, crashed or printed no result gives a result whose
"errors" list says so, like any other harness-level problem.
"""

import copy
import json
import os
import subprocess

from harness.userns import unshare

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "scenario.py")
PYTHON = "/usr/bin/python3"

# The link every scenario runs on: loopback, MTU 1500, tbf at this rate (burst
# 200kb, set in the runner). Slow enough that replies queue up as on a real link.
RATE = "20mbit"

# --net: the namespace whose counters we read. --pid --fork --kill-child
# --mount-proc: nothing started inside outlives the run, even if the runner is
# killed on timeout (the namespace's init dies, the kernel kills the rest).
# As an ordinary user, inside a user namespace of its own (harness/userns.py).
UNSHARE = unshare("--net", "--pid", "--fork", "--kill-child", "--mount-proc")

# The runner and the tools it calls never run preloaded, whatever our own
# environment holds; the runner sets LD_PRELOAD for the server alone.
RUNNER_ENV = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}

# Per-step timeouts inside the runner (seconds); the outer timeout is their sum
# plus a margin, so a hung server ends the run instead of hanging the caller.
SERVER_TIMEOUTS = {"ready_timeout": 10, "exit_timeout": 20, "stop_timeout": 5}
CLIENT_TIMEOUT = 20
SETTLE_TIMEOUT = 20


def complete(spec):
    """The spec with every default filled in (a copy)."""
    spec = copy.deepcopy(spec)
    spec.setdefault("rate", RATE)
    spec.setdefault("settle_timeout", SETTLE_TIMEOUT)
    for key, value in SERVER_TIMEOUTS.items():
        spec["server"].setdefault(key, value)
    spec["server"].setdefault("preload", None)
    for client in spec["clients"]:
        client.setdefault("timeout", CLIENT_TIMEOUT)
    return spec


def outer_timeout(spec):
    srv = spec["server"]
    each = [c.get("delay_ms", 0) / 1000.0 + c["timeout"] for c in spec["clients"]]
    if spec.get("sequential"):
        # one after the other, each followed by its own settling
        clients = sum(each) + len(each) * spec["settle_timeout"]
    else:
        clients = max(each, default=0)
    return (srv["ready_timeout"] + clients + srv["exit_timeout"]
            + spec["settle_timeout"] + srv["stop_timeout"] + 5 + 30)


def run_in_namespace(spec):
    spec = complete(spec)
    timeout = outer_timeout(spec)
    broken = {"clients": [], "client_runs": [], "server": None, "counters": None,
              "spec": spec}
    try:
        p = subprocess.run(UNSHARE + [PYTHON, RUNNER], input=json.dumps(spec),
                           capture_output=True, text=True, timeout=timeout,
                           env=RUNNER_ENV)
    except subprocess.TimeoutExpired as e:
        return dict(broken, errors=["scenario runner hung for %ss; stderr: %s"
                                    % (timeout, e.stderr)])
    try:
        result = json.loads(p.stdout)
    except ValueError:
        return dict(broken, errors=["scenario runner failed (rc %d), no result; "
                                    "stdout: %r; stderr: %s"
                                    % (p.returncode, p.stdout, p.stderr)])
    if p.returncode != 0:
        result["errors"].append("scenario runner exited with rc %d; stderr: %s"
                                % (p.returncode, p.stderr))
    return result
