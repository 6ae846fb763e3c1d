"""No harm on the read side: a program that shuts a socket's read side
(shutdown SHUT_RD or SHUT_RDWR) sees under the shim what it sees without it,
although the shim keeps that read side open underneath (a read side shut for
real on a lingering connection makes the kernel reset what the peer still
sends). Each test runs one test-apps/nh_*.c program without and with the
shim and compares what it printed (harness/noharm.py)."""

import pytest


@pytest.mark.parametrize("how", ["rd", "rdwr"])
def test_epoll_set_keeps_the_socket_after_shutdown(noharm, how):
    # EPOLL_CTL_MOD succeeds (libuv aborts on ENOENT) and events still come.
    noharm("nh_readshut_epoll", how)


def test_failing_shutdown_acts_on_nothing(noharm):
    # shutdown(fd, 7) is EINVAL and leaves the connection open both ways.
    noharm("nh_shutdown_errors")


@pytest.mark.parametrize("program", ["nh_readshut_reads", "nh_readshut_fortified"])
def test_every_read_returns_end_of_file_after_shutdown(noharm, program):
    # read, readv, recv, recvfrom, recvmsg, recvmmsg, and __read_chk,
    # __recv_chk, __recvfrom_chk in the _FORTIFY_SOURCE build: what was
    # queued, then 0 at once, while the program's output is unacknowledged.
    noharm(program)


def test_blocked_readers_are_woken_by_shutdown(noharm):
    # Threads in recv, readv and poll wake when another thread shuts the
    # socket down; the peer gets the whole reply and end-of-file.
    noharm("nh_readshut_wake")


def test_thread_stays_quiet_when_a_closed_socket_lives_on(noharm):
    # A bare clone() child still holds the socket the shim's thread lingered
    # on and closed: the thread must not spin on its end-of-file event.
    noharm("nh_quiet_after_close")
