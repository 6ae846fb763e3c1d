"""SAFECLOSE_PORTS: the library limited to the listener that has the problem.
A connection whose local port is outside the filter is left exactly as
without the shim, so it still resets; one inside is fixed. The scenario is
test_pipeline.py's (pipeserver listens on port 7000)."""

import pytest

import json

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
