"""The system calls the shim adds, counted (issue 13): regressions of the
cuts made for CPU per request show here as counts, not as timings.
bench/closebench (an ordinary program that knows nothing of the shim)
accepts and closes N connections, idle ones (the ordinary close: nothing
unread, no byte of ours ever sent) and prompt ones (a reply written, input
unread: each close hands the socket off, and the peer closes once it sees
the FIN), under strace -f, without and with the shim; the counts per
connection are asserted.

- getpid: none per connection (the pid is cached, self.c), only a few at
  start; prlimit64 the same (no getrlimit per call);
- the ordinary close and its accept: one getsockopt each beyond the
  program's own (SO_COOKIE at accept for the books, TCP_INFO at close),
  no ioctl;
- a handed-off close: no getpid either, in the program's thread or the
  shim's."""

import collections
import os
import re
import subprocess

import pytest

N = 300
CALL = re.compile(r"^(?:\[pid\s+\d+\]\s+)?(?:\d+\s+)?([a-z0-9_]+)\(")


def traced_calls(build, tmp_path, case, shim):
    trace = tmp_path / ("%s-%s.strace" % (case, "shim" if shim else "plain"))
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    argv = ["strace", "-f", "-qq", "-o", str(trace),
            "-e", "trace=getpid,prlimit64,getsockopt,ioctl"]
    if shim:
        argv += ["-E", "LD_PRELOAD=" + build.shim]
    p = subprocess.run(argv + [os.path.join(build.repo, "build", "closebench"), case, str(N)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    calls = collections.Counter()
    for line in trace.read_text().splitlines():
        m = CALL.match(line)
        if m:
            calls[m.group(1)] += 1
    return calls


@pytest.mark.needs("strace")
@pytest.mark.parametrize("case", ["idle", "prompt"])
def test_no_getpid_or_getrlimit_per_connection(build, tmp_path, case):
    plain = traced_calls(build, tmp_path, case, shim=False)
    shimmed = traced_calls(build, tmp_path, case, shim=True)
    for name in ("getpid", "prlimit64"):
        assert shimmed[name] - plain[name] <= 16, (name, plain, shimmed)
    if case == "idle":
        extra = shimmed["getsockopt"] - plain["getsockopt"]
        assert extra <= 2 * N + 16, (plain, shimmed)
        assert shimmed["ioctl"] - plain["ioctl"] <= 4, (plain, shimmed)
    else:
        assert shimmed["getsockopt"] - plain["getsockopt"] >= 2 * N  # it did hand off
