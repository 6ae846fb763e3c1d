"""No harm: process models other than fork, and what a started program sees.

Each test runs one program of test-apps/ without and with the shim (the
`noharm` fixture) and asserts it saw the same thing: children made by
clone() or vfork act on nothing of their parent's; vfork keeps its semantics;
posix_spawn's file actions, popen() and system() hand connections to
programs that then serve them after the parent has closed its copy; the
environment and the descriptors a started program gets are the ones the
program gave it."""

import os
import sys

import pytest

from harness import noharm as nh

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_clone_children_release_nothing_of_the_parent(noharm):
    plain, _ = noharm("nh_clone_children")
    assert "EPIPE" not in plain.stdout and plain.stdout.count("the reply") == 6


AFTER_CLOSE = "after the parent's close with input unread, the peer reads: "


def assert_parent_close_lingers(plain, shimmed, n):
    """Without the shim the parent's close with input unread resets; with it
    that close still lingers, all else the same: the children (which share
    the parent's memory, and would find its pid cached there) took none of
    the parent's references off the books."""
    assert plain.stdout.count(AFTER_CLOSE + "ECONNRESET") == n, plain.stdout
    assert shimmed.stdout.count(AFTER_CLOSE + "end-of-file") == n, shimmed.stdout
    assert shimmed.stdout.count("parent's next write: ok") == n
    same = [l for l in plain.stdout.splitlines() if AFTER_CLOSE not in l]
    assert same == [l for l in shimmed.stdout.splitlines() if AFTER_CLOSE not in l]


def test_clone_children_leave_the_parents_close_lingering(noharm):
    assert_parent_close_lingers(*noharm("nh_clone_children", "--close-pending", check=False), 6)


def test_vfork_keeps_vfork_semantics(noharm):
    plain, _ = noharm("nh_vfork")
    assert "its write seen by the parent: yes" in plain.stdout
    assert "errno passed back: ENOENT" in plain.stdout
    assert "atfork child handlers run in vfork children: 0" in plain.stdout
    assert plain.stdout.count("parent's next write: ok") == 4
    assert plain.stdout.count("peer reads: the reply") == 4


def test_vfork_child_leaves_the_parents_close_lingering(noharm):
    """A vfork child that closes the parent's connection, _exits or execs."""
    assert_parent_close_lingers(*noharm("nh_vfork", "--close-pending", check=False), 4)


def test_posix_spawn_dup2_of_a_cloexec_connection(noharm):
    plain, _ = noharm("nh_spawn_dup2")
    assert "client received all of the reply, then end-of-file" in plain.stdout
    assert "handler exited 0" in plain.stdout


def test_popen_and_system_children_serve_an_inherited_connection(noharm):
    plain, _ = noharm("nh_popen_system")
    assert plain.stdout.count("client received all of the reply, then end-of-file") == 2


def test_python_subprocess_hands_a_connection_over(build):
    """vfork (close_fds) and posix_spawn (without) hand-offs, by Python 3.11."""
    script = os.path.join(REPO, "test-apps", "nh_subprocess_handoff.py")
    plain, shimmed = nh.run_pair(build.shim, [sys.executable, script])
    nh.assert_same(plain, shimmed)
    assert plain.stdout.count("client received all of the reply, then end-of-file") == 2
    assert "failed exec reported: FileNotFoundError" in plain.stdout


def test_exec_environment_is_the_one_given(noharm):
    plain, _ = noharm("nh_exec_env")
    assert "SAFECLOSE" not in plain.stdout


def test_children_see_only_the_descriptors_they_were_given(noharm):
    plain, _ = noharm("nh_closefrom_exec")
    assert plain.stdout.count("child sees: 0 1 2\n") == 4


CPYTHON_TEST = "/usr/lib/python3.11/test/test_subprocess.py"


@pytest.mark.needs("libpython3.11-testsuite")
def test_cpython_pass_fds_redirected(build):
    """CPython's own check: a child started with close_fds and pass_fds has
    exactly 0, 1, 2 and the descriptors passed."""
    assert os.path.exists(CPYTHON_TEST), "libpython3.11-testsuite is missing: make deps"
    argv = ["/usr/bin/python3", "-m", "test", "test_subprocess", "-m",
            "test_pass_fds_redirected"]
    plain, shimmed = nh.run_pair(build.shim, argv, netns=False, timeout=120)
    for run in (plain, shimmed):
        assert run.returncode == 0 and "Tests result: SUCCESS" in run.stdout, (
            "rc %s\n%s\n%s" % (run.returncode, run.stdout[-3000:], run.stderr[-3000:]))
