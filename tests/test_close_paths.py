"""A/B scenarios for the ways a server lets go of a connection without
calling close(fd) itself: each is a path glibc or the kernel takes past the
interposed close(), and each sends the RST without the shim.

The scenario is that of test_pipeline.py (request 13 fails, a large error
reply, requests still arriving); only pipeserver's --close method changes."""

import json
import os

import pytest

from harness.checks import assert_clean_with_shim, assert_failure_without_shim
from test_pipeline import V4, check, pipeline_spec

LATE_DATA = 500_000      # the reply fits the send buffer: late requests hit
UNREAD_INPUT = 2_000_000  # the write blocks: requests pile up unread


@pytest.mark.parametrize("error_size", [LATE_DATA, UNREAD_INPUT], ids=["late-data", "unread-input"])
@pytest.mark.parametrize("method", [
    "fclose",       # fdopen()ed stream: glibc closes inside fclose
    "dup2-over",    # dup2(/dev/null, fd) silently closes the socket
    "close-range",  # close_range(fd, fd, 0)
    "closefrom",    # closefrom(fd)
    "syscall",      # shutdown(SHUT_WR) + syscall(SYS_close, fd), as libuv does
    "shutdown-rdwr",  # the usual advice, shutdown(SHUT_RDWR) then close():
                      # a read side shut in FIN_WAIT resets what arrives
])
def test_single_process(ab, build, method, error_size):
    check(ab, pipeline_spec(build, error_size, "--close", method))


HEIR_EVENTS = {"exit": "exit", "_exit": "exit", "exec": "exec"}


@pytest.mark.parametrize("method", [
    "exit",   # the child returns with the connection still open
    "_exit",  # shutdown(SHUT_WR) then _exit(), the connection still open
    "stdio",  # the connection moved onto 0 and 1, closed one after the other
    "exec",   # close-on-exec connection, the child execs
])
def test_fork_per_connection_child(ab, build, method):
    spec = pipeline_spec(build, UNREAD_INPUT, "--close", method, model="fork")
    spec["server"]["env"] = {"SAFECLOSE_LOG": "debug"}
    _, with_ = check(ab, spec)
    if method in HEIR_EVENTS:
        # The child ended (or was replaced) with the connection still open:
        # it handed the socket to the heir, which lingered on it once the
        # child was gone; the child itself lingered on nothing.
        log = with_["server"]["stderr"]
        assert HEIR_EVENTS[method] + ": the heir takes over" in log, log
        assert " lingered " not in log, log


@pytest.mark.parametrize("model", ["single", "fork"])
def test_in_place_linger(ab, build, model):
    # SAFECLOSE_LINGER=sync: the linger runs inside close(), no thread.
    spec = pipeline_spec(build, UNREAD_INPUT, model=model)
    spec["server"]["env"] = {"SAFECLOSE_LINGER": "sync"}
    check(ab, spec)


def app(build, name):
    return os.path.join(build.repo, "build", name)


def test_connection_passed_over_scm_rights(ab, build):
    # A front process accepts, passes the connection to a worker over a Unix
    # socket (SCM_RIGHTS) and closes its own copy at once: that close gives
    # the socket away and must not linger or shut anything; the worker's
    # close is the one that lingers.
    spec = {"server": {"argv": [app(build, "passfd"), "--listen", V4, "--conns", "1",
                                "--error-size", str(UNREAD_INPUT)],
                       "ready": "line", "exits": True},
            "clients": [{"argv": [build.pipeclient, "--connect", V4]}]}
    without, with_ = ab(spec)
    assert_failure_without_shim(without, "line")
    assert_clean_with_shim(with_, "line")


def test_reader_thread_woken_by_shutdown(ab, build):
    # A thread blocked in recv() is stopped the common way: another thread
    # writes the reply and calls shutdown(SHUT_RDWR). Under the shim the
    # read side is shut for real only once the reply is acknowledged; the
    # reader must still wake, promptly.
    spec = {"server": {"argv": [app(build, "recvwake"), "--listen", V4],
                       "ready": "line", "exits": True},
            "clients": [{"argv": [build.pipeclient, "--connect", V4]}]}
    without, with_ = ab(spec)
    assert_failure_without_shim(without, "line")
    assert_clean_with_shim(with_, "line")
    report = json.loads(with_["server"]["stdout"].splitlines()[-1])
    assert report["reader_woken"] and report["woken_after_ms"] < 5000, report


@pytest.mark.parametrize("method,setting", [("_exit", "SAFECLOSE_AT_EXIT"),
                                            ("exit", "SAFECLOSE_AT_EXIT"),
                                            ("exec", "SAFECLOSE_AT_EXEC")])
def test_exit_and_exec_lingering_can_be_turned_off(netns_run, build, method, setting):
    # With the setting off the kernel closes those sockets as it would
    # without the shim: the failure is back. (The default is tested above.)
    spec = pipeline_spec(build, UNREAD_INPUT, "--close", method, model="fork")
    spec["server"].update(preload=build.shim, env={setting: "off"})
    result = netns_run(spec)
    client = result["clients"][0]
    assert (client["error_reply"], client["end"]) != ("complete", "eof"), result
    assert result["counters"]["TCPAbortOnClose"] + result["counters"]["TCPAbortOnData"] > 0


def test_exec_while_a_child_still_serves(ab, build):
    # The parent holds the connection (close-on-exec) beside the child it
    # forked to serve it, and re-execs itself at once. Whichever comes
    # first, the child's close or the exec, lets go of a shared socket;
    # the second one is the last reference and lingers (the heir's copy,
    # when the exec came last). Nothing shuts the connection while the
    # child still serves it.
    spec = {"server": {"argv": [app(build, "execparent"), "--listen", V4,
                                "--error-size", str(UNREAD_INPUT)],
                       "ready": "line", "exits": True},
            "clients": [{"argv": [build.pipeclient, "--connect", V4]}]}
    without, with_ = ab(spec)
    assert_failure_without_shim(without, "line")
    assert_clean_with_shim(with_, "line")
    assert json.loads(with_["server"]["stdout"].splitlines()[-1]) == {"conns": 1, "errors": 0}
