"""The shape of a release (issue 9, item 10), followed as data: a close of a
socket the shim lingers on, and a shutdown(SHUT_RDWR) that it emulates, each
read as one line through the shim's files: look the socket up, take it off
the books, probe it once, decide, act.

build-shape/libsafeclose.so is the library built with gcc's
-finstrument-functions and tests/shape/trace.c, which records every function
of the shim each exported call enters; tests/shape/shape.py names their
files (`make shape` prints the paths). A file is entered when a function of
another file calls into it. What is asserted, for every traced close and
shutdown of the server's run:

- each file is entered at most once, but for three that a release asks
  twice on purpose: ownership.c (the look-up that lets every descriptor the
  shim does not track leave without a system call, then the release), heir.c
  (a close under way, then its outcome: an exec in another thread reads
  both) and epoll_books.c (whether fd is registered, which the books' verdict
  needs, then letting go of it, out of every set first when it is kept
  alive);
- no file of the release path calls into another but through release.c, the
  decision's one probe excepted (decide.c asks probe.c what it decides on);
- the helpers every file may call are not counted: the descriptor tables
  (fdspace.c), the shim's own descriptors (selffd.c), the followed process
  (self.c), the raw system calls and the clock (rawsys.h, shim.h), the A/B
  split, the settings, the log, and the stats file's timer.

Before this shape a shutdown(SHUT_RDWR) entered probe.c five times and
ownership.c three, a lingering close ownership.c and probe.c four times
each, and readshut.c asked ownership.c for the mark the release had just
seen (tests/shape/shape.py on the older library shows it)."""

import collections
import os
import subprocess
import sys

import pytest

from test_pipeline import V4

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "shape"))
import shape  # noqa: E402

HELPERS = {"fdspace.c", "selffd.c", "self.c", "rawsys.h", "shim.h", "split.c", "config.c",
           "log.c", "statsfile.c"}
TWICE = {"ownership.c", "heir.c", "epoll_books.c"}
# The one call into the release path's files that does not come from the
# entry point or release.c.
PROBE_FROM_DECIDE = ("decide.c", "probe.c")
ENTRIES = {"interpose.c", "release.c"}


@pytest.fixture(scope="module")
def shape_lib(build):
    p = subprocess.run(["make", "-C", build.repo, "-j2", "SAN=shape",
                        "build-shape/libsafeclose.so"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return os.path.join(build.repo, "build-shape", "libsafeclose.so")


def traced(netns_run, build, shape_lib, tmp_path, close):
    """The traced calls of one pipeserver connection that ends with the
    error reply and `close` while requests are still unread."""
    trace = tmp_path / "trace"
    netns_run({
        "server": {"argv": [build.pipeserver, "--listen", V4, "--model", "single",
                            "--conns", "1", "--close", close],
                   "ready": "line", "exits": True, "preload": shape_lib,
                   "env": {"SHAPE_TRACE": str(trace)}},
        "clients": [{"argv": [build.pipeclient, "--connect", V4]}]})
    return shape.shape(shape_lib, str(trace), {"close", "shutdown"})


def assert_one_line(top, entered, cross):
    said = shape.describe(top, entered, cross, path=True)
    print(said)
    for f, n in entered.items():
        if f not in HELPERS:
            assert n <= (2 if f in TWICE else 1), said
    for caller, callee in cross:
        if callee[1] in HELPERS or caller[1] in ENTRIES:
            continue
        assert (caller[1], callee[1]) == PROBE_FROM_DECIDE or top == "shutdown", said


def test_lingering_close_reads_as_one_line(netns_run, build, shape_lib, tmp_path):
    calls = traced(netns_run, build, shape_lib, tmp_path, "close")
    closes = [(t, e, c) for t, e, c in calls if t == "close"]
    lingered = [c for c in closes if any(b[0] == "reaper_hand_off" for _, b in c[2])]
    assert len(lingered) == 1, [shape.describe(*c) for c in closes]
    for call in closes:
        assert_one_line(*call)
    # The path itself: the books' verdict, then one probe, then the hand-off.
    order = [b[0] for _, b in lingered[0][2] if b[1] not in HELPERS]
    assert order.index("own_release") < order.index("probe_socket") < \
        order.index("reaper_hand_off"), order


def test_shutdown_then_close_reads_as_one_line(netns_run, build, shape_lib, tmp_path):
    calls = traced(netns_run, build, shape_lib, tmp_path, "shutdown-rdwr")
    shutdowns = [c for c in calls if c[0] == "shutdown"]
    assert len(shutdowns) == 1 and any(b[0] == "readshut_shutdown" for _, b in shutdowns[0][2])
    for call in calls:
        assert_one_line(*call)
    # The shutdown probes once and marks the books once.
    entered = shutdowns[0][1]
    assert entered["probe.c"] == 1 and entered["readshut.c"] == 1, entered
