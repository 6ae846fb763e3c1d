"""A/B testing close behaviour (issue 10), against real Debian servers.

observe: the shim changes nothing but classifies every release of a connected
TCP socket; the summed `abortive` count of every process's stats file must
equal the kernel's TcpExtTCPAbortOnClose over the same run (in a namespace
where only the server closes connections). SAFECLOSE_AB=50: the connections
split near half by the hash of their 4-tuple (computed here from the
client's side, tests/harness/split.py); every client in the linger arm gets
its whole reply, and every RST the kernel sent is a control-arm abortive
close. The stats files are rewritten while a collector polls them and never
fail to parse.

The HTTP client pipelines two GETs, the second 50 ms after the first, over a
20 mbit/s loopback: the server answers the first and closes with the second
unread (HTTP/1.0 in http.server; keepalive_requests 1 in nginx).
"""

import json
import os
import re
import subprocess
import sys

import pytest

from harness.checks import is_clean
from harness.split import server_arm

NGINX = "/usr/sbin/nginx"


def command_totals(build, *paths):
    """What `safeclose report --json` sums from the files."""
    p = subprocess.run([os.path.join(build.repo, "build", "safeclose"), "report", "--json",
                        *map(str, paths)], capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stderr) == (0, ""), p
    return json.loads(p.stdout)


READER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "servers", "stats_reader.py")
REPLY_SIZE = 300_000
COUNTERS = ("closes", "abortive", "at_risk", "clean", "lingered", "fallback",
            "peer_finished", "idle_timeout", "total_timeout", "cut_short",
            "bytes_discarded")


@pytest.fixture(scope="module")
def docroot(tmp_path_factory):
    root = tmp_path_factory.mktemp("abroot")
    (root / "big.bin").write_bytes(os.urandom(REPLY_SIZE))
    return root


def http_client(build, port, delay_ms=0):
    return {"argv": [build.pipeclient, "--connect", "127.0.0.1:%d" % port,
                     "--proto", "http", "--path", "/big.bin",
                     "--requests", "2", "--gap-ms", "50"], "delay_ms": delay_ms}


def stats_env(stats_dir, **more):
    env = {"SAFECLOSE_STATS": str(stats_dir / "stats.%p.json")}
    env.update({k: str(v) for k, v in more.items()})
    return env


def read_stats(stats_dir):
    """{pid: parsed file}, each checked against the schema."""
    files = {}
    for name in sorted(os.listdir(stats_dir)):
        assert name.endswith(".json"), "a temporary file was left behind: %s" % name
        with open(stats_dir / name) as f:
            obj = json.load(f)
        assert obj["version"] == 1
        assert name == "stats.%d.json" % obj["pid"]
        for key in ("ppid", "program", "mode", "ab", "started", "written"):
            assert key in obj, "%s has no %r" % (name, key)
        assert obj["started"] <= obj["written"]
        for arm in ("linger", "control"):
            c = obj["arms"][arm]
            assert set(COUNTERS) <= set(c), "%s %s: %s" % (name, arm, c)
            assert c["closes"] == c["abortive"] + c["at_risk"] + c["clean"]
            assert set(c["linger_ms"]) == {"p50", "p99", "max"}
            assert c["linger_ms"]["p50"] <= c["linger_ms"]["p99"] <= c["linger_ms"]["max"]
        files[obj["pid"]] = obj
    return files


def summed(files, arm):
    return {k: sum(f["arms"][arm][k] for f in files.values()) for k in COUNTERS}


def nginx_spec(build, tmp_path, docroot, workers, env):
    temp = {name: tmp_path / name for name in
            ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "daemon off; master_process on; worker_processes %d; user root;\n"
        "error_log stderr; pid %s;\n"
        "events {}\n"
        "http {\n"
        "  access_log off;\n"
        "%s"
        "  server { listen 127.0.0.1:8080 backlog=256; root %s;\n"
        "           lingering_close off; keepalive_requests 1; }\n"
        "}\n" % (workers, tmp_path / "nginx.pid",
                 "".join("  %s_temp_path %s;\n" % item for item in temp.items()),
                 docroot))
    return {
        "server": {
            "argv": [NGINX, "-e", "stderr", "-c", str(conf), "-p", str(tmp_path)],
            "ready": {"listen": 8080},
            "exits": False,
            "stop_signal": "SIGQUIT",   # graceful: every worker exit()s, writing its file
            "env": env,
        },
    }


def assert_observed_equals_kernel(result, files, mode="observe"):
    control, linger = summed(files, "control"), summed(files, "linger")
    kernel = result["counters"]["TCPAbortOnClose"]
    assert kernel > 0, "the scenario drew no abortive close: it proves nothing: %s" % result
    assert control["abortive"] == kernel, (control, result["counters"])
    assert linger["closes"] == 0
    # observe changed nothing: no linger, no hand-off, no fallback.
    assert control["lingered"] == control["fallback"] == 0
    assert all(f["mode"] == mode and f["ab"] == 0 for f in files.values())


def test_observe_python_http_server_matches_nstat(netns_run, build, http_docroot, tmp_path):
    stats = tmp_path / "stats"
    stats.mkdir()
    spec = {
        "server": {
            "argv": ["/usr/bin/python3", "-m", "http.server", "8000",
                     "--bind", "127.0.0.1", "--directory", str(http_docroot)],
            "ready": {"listen": 8000},
            "exits": False,
            "stop_signal": "SIGINT",    # KeyboardInterrupt: Python exits normally
            "preload": build.shim,
            "env": stats_env(stats, SAFECLOSE_MODE="observe"),
        },
        # 2 MB replies: the second request arrives while the first is sent.
        "clients": [http_client(build, 8000, delay_ms=100 * i) for i in range(3)],
    }
    result = netns_run(spec)
    assert result["server"]["stderr"].count("safeclose") == 0, result["server"]["stderr"]
    files = read_stats(stats)
    assert len(files) == 1
    assert_observed_equals_kernel(result, files)
    assert summed(files, "control")["closes"] >= len(spec["clients"])


@pytest.mark.needs("nginx-light")
def test_observe_nginx_workers_match_nstat(netns_run, build, docroot, tmp_path):
    stats = tmp_path / "stats"
    stats.mkdir()
    spec = nginx_spec(build, tmp_path, docroot, 3, stats_env(stats, SAFECLOSE_MODE="observe"))
    spec["server"]["preload"] = build.shim
    spec["clients"] = [http_client(build, 8080, delay_ms=50 * (i % 4)) for i in range(12)]
    result = netns_run(spec)
    files = read_stats(stats)
    assert len(files) == 4, "one file per process (master and 3 workers): %s" % sorted(files)
    assert_observed_equals_kernel(result, files)
    # Every connection is released once, by the worker that served it.
    assert summed(files, "control")["closes"] == len(spec["clients"])


def client_arms(result, percent):
    arms = []
    for c in result["clients"]:
        host, port = c["local"].rsplit(":", 1)
        arms.append(server_arm(host, int(port), "127.0.0.1", 8080, percent))
    return arms


@pytest.mark.needs("nginx-light")
def test_ab_50_on_nginx_workers(netns_run, build, docroot, tmp_path):
    stats = tmp_path / "stats"
    stats.mkdir()
    n = 40
    spec = nginx_spec(build, tmp_path, docroot, 3,
                      stats_env(stats, SAFECLOSE_AB=50, SAFECLOSE_STATS_INTERVAL_MS=20))
    spec["server"]["preload"] = build.shim
    spec["clients"] = [http_client(build, 8080, delay_ms=25 * (i % 10)) for i in range(n)]
    # A collector polling the files the whole time the workers rewrite them.
    spec["clients"].append({"argv": [sys.executable, READER, str(stats), "4"]})
    result = netns_run(spec)
    reader = result["clients"].pop()
    result["clients"] = result["clients"][:n]
    assert reader.get("failures") == 0 and reader["reads"] > 100, reader
    assert reader["versions"] > 5, "the files were not rewritten while the server ran: %s" % reader

    arms = client_arms(result, 50)
    lingering = [c for c, arm in zip(result["clients"], arms) if arm == "linger"]
    assert n * 0.3 <= len(lingering) <= n * 0.7, arms
    bad = [c for c in lingering if not is_clean(c, "http", expect_length=REPLY_SIZE)]
    assert not bad, "linger-arm clients without their whole reply: %s" % bad

    files = read_stats(stats)
    assert len(files) == 4
    linger, control = summed(files, "linger"), summed(files, "control")
    assert linger["closes"] == len(lingering)
    assert control["closes"] == n - len(lingering)
    assert result["counters"]["TCPAbortOnClose"] == control["abortive"], \
        (result["counters"], control)
    assert control["abortive"] > 0, "the control arm lost nothing: the test proves nothing"
    assert control["lingered"] == 0
    assert linger["lingered"] + linger["fallback"] > 0
    ended = linger["peer_finished"] + linger["idle_timeout"] + linger["total_timeout"]
    # Every linger that started has ended, and says how.
    assert ended + linger["cut_short"] == linger["lingered"], linger
    assert all(f["ab"] == 50 and f["mode"] == "pending" for f in files.values())
    assert {f["program"] for f in files.values()} == {"nginx"}
    # The operator's command sums the same, and merges the histograms.
    tool = command_totals(build, stats)
    assert tool["files"] == 4
    for arm, mine in (("linger", linger), ("control", control)):
        assert {k: tool["arms"][arm][k] for k in COUNTERS} == mine
    ms = tool["arms"]["linger"]["linger_ms"]
    assert 0 < ms["p50"] <= ms["p99"] <= ms["max"]
    assert ms["max"] == max(f["arms"]["linger"]["linger_ms"]["max"] for f in files.values())


@pytest.mark.parametrize("end, at_exit", [("close", "linger"), ("exit", "linger"),
                                          ("exit", "off")])
def test_fork_and_exec_family_leaves_a_file_per_process(netns_run, build, tmp_path, end,
                                                        at_exit):
    # Our inetd forks per connection; each child execs stdhandler with the
    # connection on 0 and 1, which ends it (close, or exit with it open).
    # The child's file written before execve is carried on by the handler
    # (same pid, same process): one file per process, summing to the kernel.
    # SAFECLOSE_AT_EXIT=off leaves what is open at exit to the kernel: what
    # the kernel then resets is counted all the same.
    stats = tmp_path / "stats"
    stats.mkdir()
    n = 4
    handler = [os.path.join(build.repo, "build", "stdhandler"), "--end", end,
               "--error-size", "2000000"]
    spec = {"server": {"argv": [os.path.join(build.repo, "build", "inetd"), "--listen",
                                "127.0.0.1:7000", "--conns", str(n), "--handler",
                                handler[0], "--", *handler[1:]],
                       "ready": "line", "exits": True, "preload": build.shim,
                       "env": stats_env(stats, SAFECLOSE_MODE="observe",
                                        SAFECLOSE_AT_EXIT=at_exit)},
            "clients": [{"argv": [build.pipeclient, "--connect", "127.0.0.1:7000"],
                         "delay_ms": 300 * i} for i in range(n)]}
    result = netns_run(spec)
    files = read_stats(stats)
    assert len(files) == n + 1, sorted(files)
    programs = sorted(f["program"] for f in files.values())
    assert programs == ["inetd"] + ["stdhandler"] * n
    parent = [f for f in files.values() if f["program"] == "inetd"][0]
    assert all(f["ppid"] == parent["pid"] for f in files.values() if f is not parent)
    assert_observed_equals_kernel(result, files)
    assert summed(files, "control")["closes"] == n


def test_unwritable_stats_path_is_one_line_and_the_program_runs_on(build, tmp_path):
    import subprocess
    # Many safe points (socket()) past a 1 ms interval, then the exit write:
    # every one of them fails, one line says so, the program is unchanged.
    prog = ("import socket, time, sys\n"
            "for _ in range(20):\n"
            "    socket.socket().close(); time.sleep(0.003)\n"
            "print('ran on'); sys.exit(3)\n")
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env.update(LD_PRELOAD=build.shim, SAFECLOSE_STATS="/nonexistent/dir/s.%p.json",
               SAFECLOSE_STATS_INTERVAL_MS="1")
    p = subprocess.run(["/usr/bin/python3", "-c", prog], env=env, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 3 and p.stdout == "ran on\n"
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert re.search(r"cannot write the stats file /nonexistent/dir/s\.\d+\.json: ENOENT",
                     lines[0]), lines[0]
    assert "runs on" in lines[0]


SHUTDOWNS_OF = {"shutdown-wr": {"SHUT_WR"}, "syscall": {"SHUT_WR"}, "_exit": {"SHUT_WR"},
                "shutdown-rdwr": {"SHUT_RDWR"}}


@pytest.mark.parametrize("method, model", [
    (m, "single") for m in ("close", "dup", "shutdown-wr", "shutdown-rdwr", "fclose",
                            "dup2-over", "close-range", "closefrom", "syscall")
] + [(m, "fork") for m in ("exit", "_exit", "stdio", "exec")])
@pytest.mark.needs("strace")
def test_observe_counts_every_path_and_changes_nothing(netns_run, build, tmp_path, method,
                                                       model):
    # pipeserver lets go of the connection by `method` with requests unread
    # (a 2 MB error reply blocks its write). Under observe, every path is
    # counted as the kernel counts it, and strace shows the server making
    # only its own shutdowns: no FIN of the shim's, no discarding read, no
    # descriptor kept.
    observed_unchanged(netns_run, build, tmp_path, method, model, SAFECLOSE_MODE="observe")


@pytest.mark.parametrize("method", ["close", "shutdown-rdwr"])
@pytest.mark.needs("strace")
def test_control_arm_is_treated_as_observe(netns_run, build, tmp_path, method):
    # SAFECLOSE_AB=0 under the default mode: every connection is in the
    # control arm, which must see exactly what observe does (no read-side
    # emulation of its shutdown(SHUT_RDWR) either).
    files = observed_unchanged(netns_run, build, tmp_path, method, "single",
                               SAFECLOSE_AB=0, expect_mode="pending")
    assert all(f["ab"] == 0 for f in files.values())


def observed_unchanged(netns_run, build, tmp_path, method, model, expect_mode="observe",
                       **settings):
    stats = tmp_path / "stats"
    stats.mkdir()
    trace = tmp_path / "strace.out"
    env = stats_env(stats, LD_PRELOAD=build.shim, **settings)
    server = [build.pipeserver, "--listen", "127.0.0.1:7000", "--model", model,
              "--conns", "1", "--error-size", "2000000", "--close", method]
    strace = ["strace", "-f", "-qq", "-o", str(trace), "-e",
              "trace=accept,accept4,shutdown,fcntl,recvfrom"]
    for name, value in env.items():
        strace += ["-E", "%s=%s" % (name, value)]
    result = netns_run({"server": {"argv": strace + server, "ready": "line", "exits": True},
                        "clients": [{"argv": [build.pipeclient, "--connect", "127.0.0.1:7000"]}]})
    files = read_stats(stats)
    assert_observed_equals_kernel(result, files, expect_mode)
    calls = trace.read_text()
    conns = set(re.findall(r"accept4?\(.*\)\s+=\s+(\d+)", calls))
    assert conns, calls
    kept = [fd for fd in re.findall(r"fcntl\((\d+), F_DUPFD_CLOEXEC", calls) if fd in conns]
    assert not kept and "MSG_TRUNC" not in calls, calls
    shutdowns = set(re.findall(r"shutdown\(\d+, (SHUT_\w+)\)", calls))
    assert shutdowns == SHUTDOWNS_OF.get(method, set()), calls
    return files
