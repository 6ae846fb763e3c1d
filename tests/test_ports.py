"""SAFECLOSE_PORTS: the library limited to the listener that has the problem.
A connection whose local port is outside the filter is left exactly as
without the shim, so it still resets; one inside is fixed. The scenario is
test_pipeline.py's (pipeserver listens on port 7000)."""

import pytest

import json
import os

from harness.checks import aborts, assert_clean_with_shim, assert_failure_without_shim, is_clean
from test_pipeline import ERROR_SIZES, check, pipeline_spec


@pytest.mark.parametrize("ports", ["7000", "80,443,6990-7010", " 7000 , 8000 "])
def test_a_connection_inside_the_filter_is_fixed(ab, build, ports):
    spec = pipeline_spec(build, ERROR_SIZES["unread-input"])
    spec["server"]["env"] = {"SAFECLOSE_PORTS": ports}
    check(ab, spec)


@pytest.mark.parametrize("size", sorted(ERROR_SIZES))
def test_a_connection_outside_the_filter_still_resets(ab, build, size):
    spec = pipeline_spec(build, ERROR_SIZES[size])
    spec["server"]["env"] = {"SAFECLOSE_PORTS": "80,443,7001-8100",
                             "SAFECLOSE_LOG": "debug"}
    without, with_ = ab(spec)
    assert_failure_without_shim(without, "line")
    # With the shim the failure is the same: no clean reply, an abortive close.
    client = with_["clients"][0]
    assert client["sent"] and not is_clean(client, "line"), json.dumps(with_, indent=1)
    assert aborts(with_) > 0, json.dumps(with_, indent=1)
    # Never on the books: the shim did nothing with it.
    log = with_["server"]["stderr"]
    assert " lingered " not in log and "0 handed off, 0 released" in log, log


def test_a_bad_filter_is_reported_and_every_port_is_the_shims(ab, build):
    spec = pipeline_spec(build, ERROR_SIZES["unread-input"])
    spec["server"]["env"] = {"SAFECLOSE_PORTS": "80,https"}
    without, with_ = ab(spec)
    assert_failure_without_shim(without, "line")
    assert_clean_with_shim(with_, "line")
    assert ("SAFECLOSE_PORTS: '80,https' is not a list of ports and ranges "
            "(like 80,443,8000-8100), or all, using all\n") in with_["server"]["stderr"]


def assert_still_resets(without, with_):
    assert_failure_without_shim(without, "line")
    client = with_["clients"][0]
    assert client["sent"] and not is_clean(client, "line"), json.dumps(with_, indent=1)
    assert aborts(with_) > 0, json.dumps(with_, indent=1)


@pytest.mark.parametrize("ports,fixed", [("7000", True), ("80", False)])
def test_the_filter_holds_for_inherited_connections(ab, build, ports, fixed):
    """inetd style: the spawner accepts, the exec'd handler inherits the
    connection on 0 and 1 (test_inherited.py); both run under the shim."""
    from test_inherited import client, handler, inetd
    spec = {"server": {"argv": inetd(build, *handler(build, "close")),
                       "ready": "line", "exits": True, "env": {"SAFECLOSE_PORTS": ports}},
            "clients": client(build)}
    without, with_ = ab(spec)
    if fixed:
        assert_failure_without_shim(without, "line")
        assert_clean_with_shim(with_, "line")
    else:
        assert_still_resets(without, with_)


@pytest.mark.needs("ucspi-tcp")
def test_the_filter_holds_for_inherited_connections_of_a_plain_spawner(netns_run, build):
    """tcpserver runs without the shim, only the handler has it: the handler
    adopts what it inherited only when its local port is in the filter."""
    from test_inherited import client, handler
    spec = {"server": {"argv": ["/usr/bin/tcpserver", "-q", "-R", "-H", "127.0.0.1", "7000",
                                "/usr/bin/env", "LD_PRELOAD=%s" % build.shim,
                                "SAFECLOSE_PORTS=80", *handler(build, "close")],
                       "ready": {"listen": 7000}, "exits": False},
            "clients": client(build)}
    outside = netns_run(spec)
    spec["server"]["argv"][spec["server"]["argv"].index("SAFECLOSE_PORTS=80")] = \
        "SAFECLOSE_PORTS=7000"
    inside = netns_run(spec)
    assert not is_clean(outside["clients"][0], "line") and aborts(outside) > 0, \
        json.dumps(outside, indent=1)
    assert is_clean(inside["clients"][0], "line") and aborts(inside) == 0, \
        json.dumps(inside, indent=1)


def test_the_filter_holds_for_received_connections(ab, build):
    """A front process accepts and passes the connection over SCM_RIGHTS to a
    worker (test_close_paths.py); outside the filter neither touches it."""
    from test_pipeline import V4
    spec = {"server": {"argv": [os.path.join(build.repo, "build", "passfd"), "--listen", V4,
                                "--conns", "1", "--error-size", "2000000"],
                       "ready": "line", "exits": True, "env": {"SAFECLOSE_PORTS": "80"}},
            "clients": [{"argv": [build.pipeclient, "--connect", V4]}]}
    assert_still_resets(*ab(spec))
