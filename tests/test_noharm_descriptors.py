"""No harm, descriptors: each test runs one test-apps/nh_*.c program without
and with the shim (the `noharm` fixture) and asserts it saw the same thing.

- failing calls act on nothing (dup3, close_range refused by the kernel);
- closefrom() where close_range is refused (seccomp) still closes;
- no log line goes into a socket on descriptor 2 (inetd style);
- SO_LINGER {1, N} set by the program: its close is the kernel's;
- at RLIMIT_NOFILE (64, 1024) the program gets every descriptor it would alone;
"""

import pytest


def test_failing_calls_act_on_nothing(noharm):
    plain, _ = noharm("nh_failing_calls")
    assert "EINVAL" in plain.stdout and "EPIPE" not in plain.stdout


def test_closefrom_without_close_range(noharm):
    # A seccomp filter refuses close_range (ENOSYS): glibc's closefrom walks
    # /proc/self/fd instead, and so must the shim's; a refused close_range
    # itself lets go of nothing.
    plain, _ = noharm("nh_closefrom_fallback")
    assert "close_range: -1 ENOSYS" in plain.stdout
    assert "after closefrom, open from 5 up:\n" in plain.stdout


def test_no_log_line_into_a_connection(noharm):
    # inetd style: the connection is the handler's descriptors 0, 1 and 2.
    # Even at debug level, the client receives exactly the reply.
    from harness.noharm import assert_same

    plain, shimmed = noharm("nh_log_socket", shim_env={"SAFECLOSE_LOG": "debug"},
                            check=False)
    assert_same(plain, shimmed, allow_stderr=True)
    assert "client received:REPLY\\n\n" in plain.stdout
    assert "safeclose" in shimmed.stderr  # it did log, where a log belongs


def test_so_linger_chosen_by_the_program(noharm):
    # SO_LINGER {1, N}: the kernel's close blocks up to N seconds, as the
    # program asked; the shim must neither return at once nor block its exit.
    plain, _ = noharm("nh_so_linger")
    assert "{1, 1}: 0 ok, blocked" in plain.stdout


def test_so_linger_from_elsewhere(noharm):
    # SO_LINGER {1, 0} set on the listener, through syscall(), or by the
    # program before an exec: the close still aborts, as the program asked
    # (the shim asks the kernel once any such road was taken).
    plain, _ = noharm("nh_linger_origins")
    for road in ("listener", "syscall", "inherited"):
        assert "%s: peer's read: -1 ECONNRESET" % road in plain.stdout


@pytest.mark.parametrize("limit", [64, 1024])
@pytest.mark.parametrize("started_under_it", [False, True])
def test_descriptor_limit(noharm, limit, started_under_it):
    # At its RLIMIT_NOFILE a program gets every number it would alone: the
    # shim gives back what it holds (lingers, the longest first; then its
    # thread's queue and epoll set; then the books' descriptor, which sits
    # under the limit only when the whole family started under it).
    plain, _ = noharm("nh_fd_limit", limit, nofile=limit if started_under_it else None)
    assert "then EMFILE" in plain.stdout
