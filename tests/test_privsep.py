"""Privilege separation: a fork-per-connection server whose children drop to
nobody and then turn hostile, writing garbage over every shared writable
memfd mapping they have (test-apps/privsep.c, nh_hostile_child.c). A child
whose credentials change leaves the family's books before the program runs
again (shim/ownership.c, own_detach): the garbage lands in books of its own,
the parent's books stay whole, and the parent's lingering still works."""

import os

import pytest

from harness.checks import assert_clean_with_shim, assert_failure_without_shim
from harness.deps import require_root
from test_pipeline import V4

ERROR_SIZE = 2_000_000


def privsep(build, mode, conns=2):
    return [os.path.join(build.repo, "build", "privsep"), "--listen", V4,
            "--conns", str(conns), "--mode", mode, "--error-size", str(ERROR_SIZE)]


@pytest.mark.parametrize("mode", ["helper", "worker"])
def test_children_that_drop_to_nobody_then_scribble(ab, build, mode):
    # helper: the parent serves each connection itself once its hostile
    # child is gone: its own lingering close must still work, the books
    # untouched by the garbage. worker: the child serves its connection as
    # nobody (the parent let go of its copy first, so the socket is provably
    # the child's alone when it leaves the books) and lingers on it from
    # books of its own; its garbage afterwards reaches no one else.
    require_root("a child that changes user")
    spec = {"server": {"argv": privsep(build, mode), "ready": "line", "exits": True},
            "clients": [{"argv": [build.pipeclient, "--connect", V4]} for _ in range(2)]}
    without, with_ = ab(spec)
    assert_failure_without_shim(without, "line")
    assert_clean_with_shim(with_, "line")
    assert "child exited" not in with_["server"]["stderr"], with_["server"]["stderr"]


def test_hostile_child_leaves_the_parent_as_it_was(noharm):
    # Three rounds; each child closes the round's connection, keeps another
    # while it drops to nobody, scribbles and exits. The parent then serves
    # both and makes a new socket: same replies, same results, nothing from
    # the shim on stderr (garbage in the parent's books would show as "books
    # full", a read that ends early, or a reset).
    plain, _ = noharm("nh_hostile_child")
    if os.geteuid() == 0:
        assert "cannot change user" not in plain.stdout
    assert plain.stdout.count("client got: REPLY") == 6, plain.stdout
