"""No harm at exec and exit: a failed exec leaves every connection as it
was, and exit() never shuts a connection another thread still writes to.

Both programs (test-apps/nh_exec_fails.c, nh_exit_writer.c) run without and
with the shim and must observe exactly the same thing (harness/noharm.py)."""


import os

import pytest


@pytest.mark.parametrize("args", [[], ["--subreaper"]], ids=["plain", "subreaper"])
def test_failed_exec_leaves_connections_alone(noharm, args):
    # execve() of a missing path and execvp() through three PATH entries,
    # with a close-on-exec connection holding output the peer has not
    # taken: each returns ENOENT at once, the connection still takes writes
    # and stays in the epoll set, the program has no child to wait for
    # (even as a subreaper, to which orphans come back), and the peer later
    # gets every byte.
    plain, _ = noharm("nh_exec_fails", *args)
    assert "waitpid(-1) after the failed execs: -1 ECHILD" in plain.stdout, plain.stdout
    assert "write after the failed execs: 10" in plain.stdout, plain.stdout
    assert "peer received: 65546 bytes, then end of stream" in plain.stdout, plain.stdout


def test_exit_while_another_thread_writes(noharm):
    # exit(0) in the main thread while a second thread streams to a socket:
    # status 0, not SIGPIPE (141).
    plain, _ = noharm("nh_exit_writer")
    assert "child: exited with status 0" in plain.stdout, plain.stdout
    assert "peer: end of stream after the data" in plain.stdout, plain.stdout


def test_exit_where_no_process_can_be_made(noharm):
    # A seccomp sandbox refuses clone() of a process: exit with a reply
    # still on its way falls back to lingering in the process (no heir can
    # be made), and the peer still gets every byte.
    plain, _ = noharm("nh_exit_sandboxed")
    assert "fork under the filter: -1 EPERM" in plain.stdout, plain.stdout
    assert "peer received: 65536 bytes, then end of stream" in plain.stdout, plain.stdout


def test_a_child_that_changed_user_gets_nothing_of_its_parents(noharm):
    # The family's books (shared, writable) never reach a program that runs
    # with other credentials: a worker that dropped to nobody and execs
    # lists exactly the descriptors it was given.
    plain, _ = noharm("nh_exec_other_user")
    if os.geteuid() == 0:
        assert "cannot change user" not in plain.stdout
        assert "child as nobody: status 0" in plain.stdout
    assert "client got: REPLY" in plain.stdout
