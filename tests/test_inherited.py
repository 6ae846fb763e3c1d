"""A/B scenarios for connections a program did not create: handed to it on
descriptors 0 and 1 across exec, inetd and tcpserver style. The spawner
closes its own copy right after fork; the exec'd handler serves the
connection and ends it (closing 1 then 0, or just exiting).

When the spawner runs under the shim too (LD_PRELOAD is inherited), the
family's books cross exec and tell the handler that it holds the last
reference once the spawner let go. When it does not, the handler guesses:
by default a socket no other descriptor of its own refers to is its own."""

import os

import pytest

from harness.checks import (aborts, assert_clean_with_shim, assert_failure_without_shim,
                            is_clean)
from harness.deps import require_root
from test_pipeline import V4

ERROR_SIZE = 2_000_000


def handler(build, end):
    return [os.path.join(build.repo, "build", "stdhandler"), "--end", end,
            "--error-size", str(ERROR_SIZE)]


def inetd(build, *handler_argv, spawn=False, close_after_child=False, as_nobody=False):
    """Our inetd: --handler PATH -- ARGS (fork + exec, or posix_spawn)."""
    return [os.path.join(build.repo, "build", "inetd"), "--listen", V4, "--conns", "1",
            *(["--spawn"] if spawn else []),
            *(["--close-after-child"] if close_after_child else []),
            *(["--as-nobody"] if as_nobody else []),
            "--handler", handler_argv[0], "--", *handler_argv[1:]]


def client(build):
    return [{"argv": [build.pipeclient, "--connect", V4]}]


@pytest.mark.parametrize("spawn", [False, True], ids=["fork", "posix_spawn"])
@pytest.mark.parametrize("end", ["close", "exit"])
def test_inetd_style_handler(ab, build, end, spawn):
    # posix_spawn: the spawner's references for the handler are counted
    # under a ticket, then under the handler's pid, which takes them over.
    spec = {"server": {"argv": inetd(build, *handler(build, end), spawn=spawn),
                       "ready": "line", "exits": True},
            "clients": client(build)}
    without, with_ = ab(spec)
    assert_failure_without_shim(without, "line")
    assert_clean_with_shim(with_, "line")


@pytest.mark.parametrize("spawn", [False, True], ids=["fork", "posix_spawn"])
def test_spawner_closes_after_its_handler(ab, build, spawn):
    # The handler exits first; the spawner's close is the last reference and
    # lingers. Under posix_spawn that needs the handler's references counted
    # (not only marked held): the books see them go when it exits.
    spec = {"server": {"argv": inetd(build, *handler(build, "close"), spawn=spawn,
                                     close_after_child=True),
                       "ready": "line", "exits": True},
            "clients": client(build)}
    without, with_ = ab(spec)
    assert_failure_without_shim(without, "line")
    assert_clean_with_shim(with_, "line")


def test_handler_run_by_a_shell(ab, build):
    # The handler is a command of a shell script, as inetd services and CGI
    # wrappers often are: Debian's /bin/sh (dash) vforks and execs it, waits
    # for it, and exits still holding the connection on 0 and 1, its exit
    # the last release. The handler's references are counted under the vfork
    # child's pid and given back as it ends: a mark that it holds the socket
    # out of sight would have left the shell's exit alone for good.
    command = " ".join(handler(build, "close")) + "; exit 0"
    spec = {"server": {"argv": inetd(build, "/bin/sh", "-c", command),
                       "ready": "line", "exits": True},
            "clients": client(build)}
    without, with_ = ab(spec)
    assert_failure_without_shim(without, "line")
    assert_clean_with_shim(with_, "line")


@pytest.mark.needs("ucspi-tcp")
def test_handler_run_as_another_user(ab, build):
    # The handler drops to nobody before its exec (inetd's user field,
    # tcpserver -u): the family's books are withheld from it (shared memory a
    # program with other rights must not write), and it takes as its own
    # only what no one else of the family held as it started.
    require_root("a handler that changes user")
    spec = {"server": {"argv": inetd(build, *handler(build, "close"), as_nobody=True),
                       "ready": "line", "exits": True},
            "clients": client(build)}
    without, with_ = ab(spec)
    assert_failure_without_shim(without, "line")
    assert_clean_with_shim(with_, "line")


def test_tcpserver_from_ucspi_tcp(ab, build):
    # tcpserver (Debian's ucspi-tcp), unmodified: it forks per connection and
    # execs the handler with the connection on 0 and 1. (-R -H: no ident or
    # DNS lookups, whose refused connections would be RSTs of their own.)
    spec = {"server": {"argv": ["/usr/bin/tcpserver", "-q", "-R", "-H", "127.0.0.1", "7000",
                                *handler(build, "close")],
                       "ready": {"listen": 7000}, "exits": False},
            "clients": client(build)}
    without, with_ = ab(spec)
    assert_failure_without_shim(without, "line")
    assert_clean_with_shim(with_, "line")


def test_spawner_without_the_shim(netns_run, build):
    # Only the handler runs under the shim (env puts it there): no books come
    # with the connection, so the setting decides.
    def run(setting):
        env = ["LD_PRELOAD=" + build.shim, "SAFECLOSE_INHERITED=" + setting] if setting else []
        argv = inetd(build, "/usr/bin/env", *env, *handler(build, "close"))
        return netns_run({"server": {"argv": argv, "ready": "line", "exits": True},
                          "clients": client(build)})

    plain, owned, ignored = run(None), run("own"), run("ignore")
    assert not is_clean(plain["clients"][0], "line") and aborts(plain) > 0, plain
    assert is_clean(owned["clients"][0], "line") and aborts(owned) == 0, owned
    assert not is_clean(ignored["clients"][0], "line") and aborts(ignored) > 0, ignored
