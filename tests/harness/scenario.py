#!/usr/bin/python3
"""Run one client/server scenario inside a fresh network namespace.

Meant to be started as the only program of a new namespace, e.g.

    unshare --net --pid --fork --kill-child --mount-proc \
        /usr/bin/python3 tests/harness/scenario.py < spec.json

(--net is what matters: the kernel counters read at the end belong to this
namespace alone. The pid namespace only guarantees that nothing started here
outlives the run: when this runner exits or is killed, every process in the
namespace is killed with it.)

Spec (JSON on stdin):

    {
      "rate": "20mbit",                 # tbf rate on lo (burst 200kb, latency 2s)
      "rsts_from_port": 7000,           # optional: also count the RSTs sent from
                                        # this local TCP port (IPv4), i.e. by the
                                        # server's side alone
      "server": {
        "argv": ["..."],
        "env": {"NAME": "value"},       # added to the runner's environment
        "cwd": "/path" | null,
        "preload": "/abs/libsafeclose.so" | null,   # LD_PRELOAD for the server only
        "ready": "line" | {"listen": 8000},
                                        # "line": wait for a stdout line starting
                                        # with READY; {"listen": port}: wait until a
                                        # TCP socket of the namespace listens on port
        "exits": true | false,          # server exits by itself after its connections
        "stop_signal": "SIGTERM",       # used when it does not exit by itself
        "ready_timeout": 10, "exit_timeout": 30, "stop_timeout": 5
      },
      "clients": [{"argv": ["..."], "delay_ms": 0, "timeout": 30}],
      "sequential": false,              # true: the clients one after the other,
                                        # each started once the connections of
                                        # the one before are over (only LISTEN
                                        # and TIME_WAIT left), each with its
                                        # own counters: many runs against one
                                        # server in one namespace
      "settle_timeout": 30              # wait for all connections to be over
    }

Result (one JSON line on stdout):

    {"clients": [parsed last stdout line of each client, or {"raw": text}],
     "client_runs": [{"rc", "stderr", "seconds"}],
     "server": {"rc", "stdout", "stderr", "stopped_by",
                "exited_s": seconds from the clients' start until the server
                            process (never anything it left behind) had
                            exited by itself, or null},
     "counters": {"TCPAbortOnClose", "TCPAbortOnData", "OutRsts",
                  "RstsFromPort" (with rsts_from_port)},
     "rsts": ["source port > destination port" of every RST on the loopback],
     "server_rsts": how many of them the server's port sent (null when the
                    port is not known: the server never got ready),
     "client_counters": (sequential only) the counters' growth during each
                        client's run and the settling after it, one per client,
     "errors": [harness-level problems: timeouts, a server that never got ready,
                a server that had to be SIGKILLed, leftover connections, ...],
     "spec": the spec as received}

The runner always prints a result when it can; a non-empty "errors" list means
the scenario did not run as specified and the test must fail.
"""

import json
import os
import signal
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time

TBF_BURST = "200kb"     # much smaller bursts drop large loopback packets
TBF_LATENCY = "2s"
POLL = 0.02             # condition-poll interval, seconds

TCP_LISTEN = 0x0A
TCP_TIME_WAIT = 0x06
TCP_STATES = {
    0x01: "ESTABLISHED", 0x02: "SYN_SENT", 0x03: "SYN_RECV",
    0x04: "FIN_WAIT1", 0x05: "FIN_WAIT2", 0x06: "TIME_WAIT", 0x07: "CLOSE",
    0x08: "CLOSE_WAIT", 0x09: "LAST_ACK", 0x0A: "LISTEN", 0x0B: "CLOSING",
}


def wait_for(cond, timeout):
    """Poll cond() until it returns something truthy or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(POLL)


def run_setup(argv, errors):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    if p.returncode != 0:
        errors.append("setup %r failed (rc %d): %s"
                      % (" ".join(argv), p.returncode, p.stderr.strip()))
        return False
    return True


def address(hexaddr):
    """/proc/net/tcp{,6} "0100007F:1F40" -> "127.0.0.1:8000" (words are host-endian)."""
    ip, port = hexaddr.split(":")
    raw = b"".join(bytes.fromhex(ip[i:i + 8])[::-1] for i in range(0, len(ip), 8))
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return "%s:%d" % (socket.inet_ntop(family, raw), int(port, 16))


def tcp_sockets():
    """[(state, local "ip:port" hex, remote hex)] of every TCP socket here."""
    socks = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            socks.append((int(fields[3], 16), fields[1], fields[2]))
    return socks


def listening_on(port):
    return any(st == TCP_LISTEN and int(local.rsplit(":", 1)[1], 16) == port
               for st, local, _ in tcp_sockets())


def busy_sockets():
    """Sockets still in a state other than LISTEN and TIME_WAIT."""
    return ["%s %s->%s" % (TCP_STATES.get(st, hex(st)), address(local), address(remote))
            for st, local, remote in tcp_sockets()
            if st not in (TCP_LISTEN, TCP_TIME_WAIT)]


def wait_settled(timeout):
    """Wait until only LISTEN and TIME_WAIT sockets are left; return the rest."""
    left = []

    def settled():
        left[:] = busy_sockets()
        return not left
    wait_for(settled, timeout)
    return left


def read_counters():
    def table(path):
        rows = {}
        with open(path) as f:
            lines = f.read().splitlines()
        for names, values in zip(lines[0::2], lines[1::2]):
            prefix, names = names.split(":", 1)
            _, values = values.split(":", 1)
            rows[prefix] = dict(zip(names.split(), map(int, values.split())))
        return rows
    ext = table("/proc/net/netstat")["TcpExt"]
    tcp = table("/proc/net/snmp")["Tcp"]
    return {"TCPAbortOnClose": ext["TCPAbortOnClose"],
            "TCPAbortOnData": ext["TCPAbortOnData"],
            "OutRsts": tcp["OutRsts"]}


class Reader(threading.Thread):
    """Collects a pipe's text; notices the first line that starts with READY."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.chunks = []
        self.ready = threading.Event()

    def run(self):
        for line in iter(self.pipe.readline, ""):
            self.chunks.append(line)
            if line.startswith("READY"):
                self.ready.set()
        self.pipe.close()

    def text(self):
        return "".join(self.chunks)


def child_env(additions, preload):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)     # never inherit one: A/B must mean what it says
    env.update(additions or {})
    if preload:
        env["LD_PRELOAD"] = preload
        sanitizer_logs(env)
    return env


def sanitizer_logs(env):
    """Under the Makefile's sanitized targets (SAN_LOGS set): the sanitizers'
    reports go to a directory of this run's own. Their logs are named
    log_path.PID, opened with O_TRUNC, and this pid namespace's pids are the
    previous run's: a later run would overwrite an earlier report."""
    logs = env.get("SAN_LOGS")
    if not logs:
        return
    own = tempfile.mkdtemp(dir=logs, prefix="run.")
    for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS"):
        tool = name.split("_")[0].lower()
        env[name] = env.get(name, "") + ":log_path=" + os.path.join(own, tool)


def parse_client_output(out):
    lines = [line for line in out.splitlines() if line.strip()]
    if lines:
        try:
            value = json.loads(lines[-1])
            if isinstance(value, dict):
                return value
        except ValueError:
            pass
    return {"raw": out}


def run_client(index, spec, results, runs, errors):
    delay = spec.get("delay_ms", 0) / 1000.0
    if delay:
        time.sleep(delay)   # the scenario's own schedule, not a race fix
    start = time.monotonic()
    timeout = spec.get("timeout", 30)
    proc = subprocess.Popen(spec["argv"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, errors="replace", process_group=0,
                            env=child_env(spec.get("env"), None))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        errors.append("client %d timed out after %ss" % (index, timeout))
        signal_group(proc, signal.SIGKILL)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:   # a pipe held open outside its group
            proc.kill()
            proc.wait()
            out, err = "", "(output lost: pipe still held open after kill)"
    results[index] = parse_client_output(out)
    runs[index] = {"rc": proc.returncode, "stderr": err,
                   "seconds": round(time.monotonic() - start, 3)}


def signal_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def run_in_sequence(threads, join, settle, errors):
    """Run the client threads one at a time; each one's counter growth.

    A client's connection is over only once the server's side has settled
    too (a linger ends after the client's own close), so each client waits
    for the one before to settle and its counters include that settling."""
    counters = []
    for i, t in enumerate(threads):
        before = read_counters()
        t.start()
        join(t)
        left = wait_settled(settle)
        if left:
            errors.append("client %d: connections still open after %ss: %s"
                          % (i, settle, left))
        after = read_counters()
        counters.append({k: after[k] - before[k] for k in after})
    return counters


def main():
    spec = json.load(sys.stdin)
    errors = []
    result = {"clients": [], "client_runs": [], "server": None,
              "counters": None, "errors": errors, "spec": spec}
    try:
        scenario(spec, result, errors)
    except Exception as e:  # report, don't hide: the test fails on errors
        errors.append("runner exception: %r" % (e,))
    try:
        result["counters"] = read_counters()
        if spec.get("rsts_from_port") is not None:
            result["counters"]["RstsFromPort"] = rsts_counted()
    except Exception as e:
        errors.append("cannot read counters: %r" % (e,))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


TBF = ["tbf", "rate", None, "burst", TBF_BURST, "latency", TBF_LATENCY]
FAST = "10gbit"         # htb classes that never limit: the tbf under one does
RST_QDISC = "10:"


def shape(rate, rsts_from_port, errors):
    """The rate limit on lo; with rsts_from_port, under an htb whose filter
    puts every RST sent from that port into a class of its own, so that the
    packet count of its queue is what that side alone sent. (OutRsts counts
    the whole namespace: a client's kernel answering a TIME_WAIT's ACK of its
    own retransmitted FIN, once its socket is gone, counts there too.) This
    kernel has no prio qdisc, no tc actions, no per-filter counters."""
    tbf = [rate if a is None else a for a in TBF]
    tc = ["tc", "qdisc", "add", "dev", "lo"]
    if rsts_from_port is None:
        return run_setup(tc + ["root"] + tbf, errors)
    classes = ["tc", "class", "add", "dev", "lo", "parent", "1:"]
    return (run_setup(tc + ["root", "handle", "1:", "htb", "default", "2"], errors)
            and run_setup(classes + ["classid", "1:1", "htb", "rate", FAST], errors)
            and run_setup(classes + ["classid", "1:2", "htb", "rate", FAST], errors)
            and run_setup(tc + ["parent", "1:1", "handle", RST_QDISC, "pfifo"], errors)
            and run_setup(tc + ["parent", "1:2", "handle", "20:"] + tbf, errors)
            # IPv4 without options (loopback): TCP source port at 20, flags at 33.
            and run_setup(["tc", "filter", "add", "dev", "lo", "parent", "1:",
                           "protocol", "ip", "prio", "1", "u32",
                           "match", "ip", "protocol", "6", "0xff",
                           "match", "u16", str(rsts_from_port), "0xffff", "at", "20",
                           "match", "u8", "0x04", "0x04", "at", "33",
                           "flowid", "1:1"], errors))


def rsts_counted():
    p = subprocess.run(["tc", "-s", "-j", "qdisc", "show", "dev", "lo"],
                       capture_output=True, text=True, timeout=10, check=True)
    return next(q["packets"] for q in json.loads(p.stdout) if q["handle"] == RST_QDISC)


class RstWatch:
    """Every RST on the loopback, and who sent it (tcpdump, started before
    the server and stopped after the last settling). OutRsts counts both
    sides of the namespace: a client whose FIN was retransmitted may answer
    the late duplicate ACK, after its socket is gone, with an ordinary RST
    that says nothing about how the server closed."""

    def __init__(self, errors):
        self.proc = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-nn", "-l", "-q", "tcp[tcpflags] & tcp-rst != 0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, errors="replace")
        self.out, self.err = Reader(self.proc.stdout), Reader(self.proc.stderr)
        self.out.start()
        self.err.start()
        if not wait_for(lambda: "listening on" in self.err.text()
                        or self.proc.poll() is not None, 10) or self.proc.poll() is not None:
            errors.append("tcpdump did not start: %s" % self.err.text().strip())

    def stop(self):
        """[(source port, destination port)] of every RST seen."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)    # flushes what it has
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.join(5)
        self.err.join(5)
        rsts = []
        for line in self.out.text().splitlines():
            # "12:00:00.000000 IP 127.0.0.1.7000 > 127.0.0.1.55174: tcp 0"
            fields = line.split()
            if len(fields) >= 5 and fields[3] == ">":
                rsts.append((int(fields[2].rsplit(".", 1)[1]),
                             int(fields[4].rstrip(":").rsplit(".", 1)[1])))
        return rsts


def server_port(srv, out):
    ready = srv.get("ready", "line")
    if ready != "line":
        return ready["listen"]
    for line in out.text().splitlines():
        if line.startswith("READY"):
            return int(line.split()[1])
    return None


def scenario(spec, result, errors):
    rate = spec.get("rate", "20mbit")
    if not (run_setup(["ip", "link", "set", "lo", "up", "mtu", "1500"], errors)
            and shape(rate, spec.get("rsts_from_port"), errors)):
        return
    watch = RstWatch(errors)
    try:
        serve(spec, result, errors)
    finally:
        rsts = watch.stop()
        port = result.pop("server_port", None)
        result["rsts"] = ["%d > %d" % r for r in rsts]
        result["server_rsts"] = (sum(1 for src, _ in rsts if src == port)
                                 if port is not None else None)



def serve(spec, result, errors):
    srv = spec["server"]
    # TEST_WRAPPER (see harness/noharm.py): only in front of a shimmed server.
    wrapper = shlex.split(os.environ.get("TEST_WRAPPER", "")) if srv.get("preload") else []
    server = subprocess.Popen(
        wrapper + srv["argv"], cwd=srv.get("cwd"), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
        env=child_env(srv.get("env"), srv.get("preload")), process_group=0)
    out, err = Reader(server.stdout), Reader(server.stderr)
    out.start()
    err.start()
    stopped_by = None
    exited_s = None
    try:
        ready = srv.get("ready", "line")
        ready_timeout = srv.get("ready_timeout", 10)
        if ready == "line":
            is_ready = lambda: out.ready.is_set() or server.poll() is not None
        else:
            port = ready["listen"]
            is_ready = lambda: listening_on(port) or server.poll() is not None
        wait_for(is_ready, ready_timeout)
        result["server_port"] = server_port(srv, out)
        if server.poll() is not None:
            errors.append("server exited (rc %s) before it was ready" % server.returncode)
            return
        if not is_ready():
            errors.append("server not ready after %ss" % ready_timeout)
            return

        clients = spec["clients"]
        results = [None] * len(clients)
        runs = [None] * len(clients)
        threads = [threading.Thread(target=run_client,
                                    args=(i, c, results, runs, errors))
                   for i, c in enumerate(clients)]
        started = time.monotonic()

        def join(t):
            nonlocal exited_s
            while t.is_alive():
                t.join(POLL)
                if exited_s is None and server.poll() is not None:
                    exited_s = round(time.monotonic() - started, 3)
        if spec.get("sequential"):
            result["client_counters"] = run_in_sequence(
                threads, join, spec.get("settle_timeout", 30), errors)
        else:
            for t in threads:
                t.start()
            for t in threads:
                join(t)
        result["clients"] = results
        result["client_runs"] = runs

        if srv.get("exits"):
            exit_timeout = srv.get("exit_timeout", 30)
            try:
                server.wait(timeout=exit_timeout)
                stopped_by = "exit"
                if exited_s is None:
                    exited_s = round(time.monotonic() - started, 3)
            except subprocess.TimeoutExpired:
                errors.append("server did not exit by itself within %ss" % exit_timeout)

        settle = spec.get("settle_timeout", 30)
        left = wait_settled(settle)
        if left:
            errors.append("connections still open after %ss: %s" % (settle, left))
    finally:
        if server.poll() is None:
            sig = getattr(signal, srv.get("stop_signal", "SIGTERM"))
            signal_group(server, sig)
            stop_timeout = srv.get("stop_timeout", 5)
            try:
                server.wait(timeout=stop_timeout)
                stopped_by = stopped_by or sig.name
            except subprocess.TimeoutExpired:
                signal_group(server, signal.SIGKILL)
                server.wait()
                stopped_by = "SIGKILL"
                errors.append("server ignored %s for %ss, killed" % (sig.name, stop_timeout))
        # Whatever the server left behind in its group (workers, forked children).
        signal_group(server, signal.SIGKILL)
        out.join(5)
        err.join(5)
        result["server"] = {"rc": server.returncode, "stdout": out.text(),
                            "stderr": err.text(), "stopped_by": stopped_by,
                            "exited_s": exited_s}
    # Stopping the server may close connections of its own: let them finish too.
    left = wait_settled(5)
    if left:
        errors.append("connections still open after the server stopped: %s" % left)


if __name__ == "__main__":
    main()
