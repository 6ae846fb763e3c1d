"""A/B scenarios with our own pipelining test apps.

pipeclient sends "GET <i>" every 10 ms without waiting for replies; pipeserver
answers them in order, fails request 13 with a large error reply and ends the
connection. Each test runs the scenario without and with the shim.

Every scenario is run on both paths to a RST, chosen by the error reply size
(measured on the 20 mbit/s loopback, each failing without the shim in every
one of 50+ runs; the 300 KB default of pipeserver escaped in ~2% of runs):
  late-data     500 KB: the reply fits the send buffer, the server closes at
                once with nothing unread and the reply still in flight; the
                client's next requests hit the orphaned socket (TCPAbortOnData).
  unread-input  2 MB: the write blocks while the next requests pile up unread,
                then close() finds them (TCPAbortOnClose).
The checks only require TCPAbortOnClose + TCPAbortOnData > 0 without the shim:
which of the two the kernel counts is timing, not the point.

quietserver (test_quiet_close) ends at a quiet moment instead: its error reply
acknowledged, everything the client sent read, nothing left for close() to
find, while the client is still sending.
"""

import json

import pytest

from harness.checks import (assert_clean_with_shim, assert_each_run_fails_without_shim,
                            assert_failure_without_shim)

V4 = "127.0.0.1:7000"
V6 = "[::1]:7000"

ERROR_SIZES = {"late-data": 500_000, "unread-input": 2_000_000}


@pytest.fixture(params=sorted(ERROR_SIZES))
def error_size(request):
    return ERROR_SIZES[request.param]


def pipeline_spec(build, error_size, *server_args, addr=V4, model="single"):
    return {
        "server": {
            "argv": [build.pipeserver, "--listen", addr, "--model", model,
                     "--conns", "1", "--error-size", str(error_size), *server_args],
            "ready": "line",    # pipeserver prints "READY <port>"
            "exits": True,      # ... and exits after --conns connections
        },
        "clients": [{"argv": [build.pipeclient, "--connect", addr]}],
    }


def server_stats(result):
    """pipeserver's last stdout line: {"conns", "eagain_wakeups", "stale_events", "errors"}."""
    lines = result["server"]["stdout"].splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise AssertionError("pipeserver printed no stats line\nfull result:\n%s"
                             % json.dumps(result, indent=1))


def check(ab, spec):
    without, with_ = ab(spec)
    assert_failure_without_shim(without, "line")
    assert_clean_with_shim(with_, "line")
    # The shim must not disturb the server itself: it served its connection
    # without I/O errors, and its epoll set never reported a closed number.
    stats = server_stats(with_)
    assert (stats["conns"], stats["errors"], stats["stale_events"]) == (1, 0, 0), \
        "pipeserver under the shim: %s\nfull result:\n%s" % (stats, json.dumps(with_, indent=1))
    return without, with_


@pytest.mark.parametrize("model", ["single", "thread", "fork"])
def test_plain_close(ab, build, error_size, model):
    check(ab, pipeline_spec(build, error_size, model=model))


def test_epoll(ab, build, error_size):
    check(ab, pipeline_spec(build, error_size, "--io", "epoll"))


def test_close_after_dup(ab, build, error_size):
    # The app dups the socket and closes the original early: that first close
    # must be left alone (another descriptor still holds the connection).
    check(ab, pipeline_spec(build, error_size, "--close", "dup"))


def test_close_after_own_shutdown_wr(ab, build, error_size):
    # The app half-closes by itself before close(), as Python's socketserver does.
    check(ab, pipeline_spec(build, error_size, "--close", "shutdown-wr"))


def test_ipv6(ab, build, error_size):
    check(ab, pipeline_spec(build, error_size, addr=V6))


QUIET_RUNS = 5


def test_quiet_close(ab, build):
    # A close with nothing unread and nothing unacknowledged, while the peer
    # has not finished: its next request reaches a closed socket and draws
    # the RST (TCPAbortOnData), which makes the client's kernel drop what its
    # application has not read yet. The client reads nothing for its first
    # 300 ms (busy sending, as an upload is), so every reply is still in its
    # kernel when the reset comes. Under `pending` the shim must linger here
    # too: an empty queue at the close says nothing of what is on its way.
    spec = {
        "server": {"argv": [build.quietserver, "--listen", V4, "--conns", str(QUIET_RUNS),
                            "--error-size", "1000"],
                   "ready": "line", "exits": True},
        "clients": [{"argv": [build.pipeclient, "--connect", V4,
                              "--read-after-ms", "300"]}] * QUIET_RUNS,
        "sequential": True,
    }
    without, with_ = ab(spec)
    assert_each_run_fails_without_shim(without, "line")
    assert_clean_with_shim(with_, "line")
