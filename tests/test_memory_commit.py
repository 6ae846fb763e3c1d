"""The commit charge the shim adds to a process: what a program under
vm.overcommit_memory=2 pays for it when it starts, and again at every fork.

Under overcommit mode 2 the kernel ignores MAP_NORESERVE and charges every
private writable mapping in full when it is made (and a fork charges the
child with all of them again), so tables indexed by descriptor number that
cover the hard RLIMIT_NOFILE (2^16 to 2^20 entries) would cost megabytes per
process whether used or not. VmData in /proc/PID/status is that set of
mappings (private, writable, not the stack): the tests compare it without and
with the shim, at start-up and after a lingering close (the background thread
running, the epoll books in use), and run an epoll server and a forking one
under RLIMIT_DATA just above what they need without the shim: the per-process
limit that counts the same mappings mode 2 charges (setting
vm.overcommit_memory would change the whole machine, other users included).
"""

import json
import os
import resource
import socket
import subprocess

import pytest

# kB the shim may add to VmData: its .bss (~100 kB, most of it the settings
# file's buffer), the first chunk (64 kB) of the ownership and of the epoll
# books, the background thread's stack (256 kB), libc's arena for it.
BOUND_KB = 768


def vm_data_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmData:"):
                return int(line.split()[1])
    raise AssertionError("no VmData for %d" % pid)


class Server:
    """pipeserver on a loopback port, with the shim or not, under an optional
    RLIMIT_DATA (bytes)."""

    def __init__(self, build, args, preload, data_limit=None, stats=None):
        env = {k: v for k, v in os.environ.items()
               if k != "LD_PRELOAD" and not k.startswith("SAFECLOSE_")}
        if preload:
            env["LD_PRELOAD"] = preload
        if stats:
            env["SAFECLOSE_STATS"] = stats

        def limit():
            if data_limit:
                resource.setrlimit(resource.RLIMIT_DATA, (data_limit, data_limit))
        self.proc = subprocess.Popen(
            [build.pipeserver, "--listen", "127.0.0.1:0"] + args, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit)
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.proc.kill()
            out, err = self.proc.communicate(timeout=10)
            pytest.fail("pipeserver did not start (%r): %s%s" % (line, out, err),
                        pytrace=False)
        self.port = int(line.split()[1])

    def connection(self, requests=6, fail_at=3):
        """Pipelines requests, the error reply at fail_at; what came back."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=20) as s:
            s.sendall(b"GET\n" * requests)
            got = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return got
                got += chunk

    def finish(self):
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err


# Small replies (the server's own buffers stay small); the requests after
# the third are unread at its close, so the shim lingers.
PROTO = ["--conns", "2", "--fail-at", "3", "--reply-size", "1000", "--error-size", "20000"]
# kB above its start-up VmData the server needs for itself.
APP_SLACK_KB = 256


def run_epoll(build, preload, data_limit=None, stats=None):
    """VmData (kB) at start-up and after a lingering close; the replies."""
    srv = Server(build, ["--model", "single", "--io", "epoll"] + PROTO, preload, data_limit,
                 stats)
    at_start = vm_data_kb(srv.proc.pid)
    first = srv.connection()
    after = vm_data_kb(srv.proc.pid)
    second = srv.connection()
    rc, out, err = srv.finish()
    return at_start, after, [first, second], rc, err


def test_added_commit_charge_is_bounded(build):
    without = run_epoll(build, None)
    with_ = run_epoll(build, build.shim)
    added_start = with_[0] - without[0]
    added_after = with_[1] - without[1]
    print("VmData kB without/with the shim: at start %d/%d (+%d), after a lingering close "
          "%d/%d (+%d)" % (without[0], with_[0], added_start, without[1], with_[1],
                           added_after))
    assert without[3] == 0 and with_[3] == 0, (without[4], with_[4])
    assert all(b"ERR 3 20000" in r and len(r) > 20000 for r in with_[2]), with_[2]
    assert added_start <= BOUND_KB
    assert added_after <= BOUND_KB


def run_fork(build, preload, data_limit, stats=None):
    srv = Server(build, ["--model", "fork"] + PROTO, preload, data_limit, stats)
    replies = [srv.connection(), srv.connection()]
    rc, out, err = srv.finish()
    return replies, rc, err


@pytest.mark.parametrize("model", ["epoll", "fork"])
def test_starts_and_forks_under_a_data_limit(build, model, tmp_path):
    """RLIMIT_DATA at what the server needs without the shim (its start-up
    VmData plus APP_SLACK_KB, shown enough by a run without the shim under
    it), then BOUND_KB more: with the shim it still starts, serves every
    reply and (fork model) forks a child per connection. A shim that could
    not map its tables would run on too, leaving every socket alone and
    saying so on stderr: so nothing on stderr, and the stats files count the
    lingering closes (one per connection, in the server or its children)."""
    app_limit = (run_epoll(build, None)[0] + APP_SLACK_KB) * 1024
    run = run_epoll if model == "epoll" else run_fork
    without = run(build, None, app_limit)
    stats = tmp_path / "stats.%p.json"
    with_ = run(build, build.shim, app_limit + BOUND_KB * 1024, str(stats))
    assert without[-2] == 0, without[-1]
    assert with_[-2] == 0 and with_[-1] == "", with_[-1]
    lingered = sum(json.loads(f.read_text())["arms"]["linger"]["lingered"]
                   for f in tmp_path.glob("stats.*.json"))
    assert lingered == 2
    assert all(b"ERR 3 20000" in r for r in with_[-3]), with_[-3]
