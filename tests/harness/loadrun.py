#!/usr/bin/python3
"""A long-running server under load: what it holds before and after.

Started as the only program of fresh network and pid namespaces (run() does
that, as harness/netns.py does for the scenarios):

    {"server": argv, "port": 8000, "env": {...}, "preload": path | null,
     "rate": "1gbit",
     "warmup": argv, "load": argv}        # client command lines (JSON output)

The server starts (LD_PRELOAD=preload for it alone) and is waited for on
its port; the warm-up client runs (the server's lazy start-up: its thread
pool, the shim's books and thread); once every connection is over (only
LISTEN and TIME_WAIT left) the server's descriptors, threads and RSS are
sampled; then the load, the settling, and the same sample. Result (one JSON
line): {"warmup", "load": the clients' JSON, "before", "after": {"fds",
"threads", "rss_kb", "anon_kb", "shmem_kb"}, "counters": the namespace's abort counters' growth
during the load, "errors": [...]}.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenario  # noqa: E402  (its namespace helpers: setup, settling, listening)

UNSHARE = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]


def sample(pid):
    fds = len(os.listdir("/proc/%d/fd" % pid))
    status = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.split()
    return {"fds": fds, "threads": int(status["Threads"][0]),
            "rss_kb": int(status["VmRSS"][0]), "anon_kb": int(status["RssAnon"][0]),
            "shmem_kb": int(status["RssShmem"][0])}


def client(argv, errors, timeout=600):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       env=scenario.child_env(None, None))
    out = scenario.parse_client_output(p.stdout)
    if p.returncode != 0 or "raw" in out:
        errors.append("client %s: rc %d, %s" % (argv[0], p.returncode, p.stderr[-2000:]))
    return out


def main():
    spec = json.load(sys.stdin)
    errors = []
    result = {"errors": errors}
    if not (scenario.run_setup(["ip", "link", "set", "lo", "up", "mtu", "1500"], errors) and
            scenario.run_setup(["tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate",
                                spec.get("rate", "1gbit"), "burst", scenario.TBF_BURST,
                                "latency", scenario.TBF_LATENCY], errors)):
        print(json.dumps(result))
        return
    # The server's stderr goes to a file: a pipe no one reads while the load
    # runs would fill up (http.server logs every request) and stop it.
    log = tempfile.TemporaryFile(mode="w+")
    server = subprocess.Popen(spec["server"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=log, text=True,
                              env=scenario.child_env(spec.get("env"), spec.get("preload")))
    try:
        if not scenario.wait_for(lambda: scenario.listening_on(spec["port"]), 10):
            errors.append("server never listened on %d" % spec["port"])
            return
        result["warmup"] = client(spec["warmup"], errors)
        left = scenario.wait_settled(20)
        result["before"] = sample(server.pid)
        counters = scenario.read_counters()
        start = time.monotonic()
        result["load"] = client(spec["load"], errors)
        left += scenario.wait_settled(30)
        result["settle_s"] = round(time.monotonic() - start, 3)
        # A handler thread may still be on its way out after its socket is
        # gone: the sample is taken again (for up to 5 s) until the counts
        # are back where they were, and the last one is reported.
        after = sample(server.pid)
        deadline = time.monotonic() + 5
        while ((after["fds"], after["threads"]) != (result["before"]["fds"],
                                                    result["before"]["threads"])
               and time.monotonic() < deadline):
            time.sleep(0.05)
            after = sample(server.pid)
        result["after"] = after
        result["counters"] = {k: v - counters[k] for k, v in scenario.read_counters().items()}
        if left:
            errors.append("connections still open: %s" % left[:10])
        if server.poll() is not None:
            errors.append("server exited with rc %s" % server.returncode)
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.seek(0)
        result["server_stderr"] = log.read()[-4000:]
        print(json.dumps(result))


def run(spec, timeout=900):
    """The spec run in fresh namespaces; the result dict (errors say what went wrong)."""
    try:
        p = subprocess.run(UNSHARE + ["/usr/bin/python3", os.path.abspath(__file__)],
                           input=json.dumps(spec), capture_output=True, text=True,
                           timeout=timeout, env=scenario_env())
    except subprocess.TimeoutExpired as e:
        return {"errors": ["load run hung for %ss: %s" % (timeout, e.stderr)]}
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {"errors": ["load run failed (rc %d): %s %s" % (p.returncode, p.stdout, p.stderr)]}


def scenario_env():
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}


if __name__ == "__main__":
    main()
