"""Background lingering (SAFECLOSE_LINGER=async, the default): close()
returns at once and the socket lingers in the shim's thread. These scenarios
check what that must not break or leave behind: an event loop's epoll set,
descriptor numbers, the bounds, the cap, fork and exit."""

import json

import pytest

from harness.checks import assert_failure_without_shim, aborts
from test_pipeline import V4, server_stats

ERROR_SIZE = 500_000


def server(build, *args, conns=1):
    return {"argv": [build.pipeserver, "--listen", V4, "--conns", str(conns),
                     "--error-size", str(ERROR_SIZE), *args],
            "ready": "line", "exits": True}


def client(build, *args, delay_ms=0):
    return {"argv": [build.pipeclient, "--connect", V4, *args], "delay_ms": delay_ms}


def dump(result):
    return json.dumps(result, indent=1)


def test_event_loop_with_many_clients(ab, build):
    # One epoll loop, 10 concurrent pipelining clients: 5 send a request the
    # server fails (error reply, close with input unread), 5 end the
    # connection themselves after 5 replies.
    bad = [client(build, "--bad-at", "13", delay_ms=20 * i) for i in range(5)]
    good = [client(build, "--quit-after", "5", delay_ms=20 * i + 10) for i in range(5)]
    spec = {"server": server(build, "--io", "epoll", "--fail-at", "0", conns=10),
            "clients": bad + good}
    without, with_ = ab(spec)

    assert aborts(without) > 0, dump(without)
    assert any(c["error_reply"] != "complete" or c["end"] != "eof"
               for c in without["clients"][:5]), dump(without)

    for c in with_["clients"][:5]:
        assert (c["error_reply"], c["end"]) == ("complete", "eof"), dump(with_)
    for c in with_["clients"][5:]:
        assert (c["ok_replies"], c["end"]) == (5, "quit"), dump(with_)
    # (OutRsts is not asserted here: with ten connections through the rate
    # limit, a retransmitted FIN can reach a client socket that is already
    # gone and draw an ordinary RST; the abort counters are what matter.)
    assert aborts(with_) == 0, dump(with_)
    stats = server_stats(with_)
    # No wake-up for a descriptor the loop had closed: no event carried a
    # closed number, and no readable event turned out empty.
    assert (stats["conns"], stats["errors"], stats["stale_events"], stats["eagain_wakeups"]) \
        == (10, 0, 0, 0), dump(with_)
    # The lingering sockets live above the numbers the program uses.
    assert stats["max_conn_fd"] < 1024, dump(with_)


def test_peer_that_never_stops_is_cut_off_at_the_total_bound(ab, build):
    # The client keeps sending after the server's FIN and never closes. The
    # linger must end at SAFECLOSE_LINGER_MS (1 s here), and then the process
    # holds nothing more: its open sockets are counted 2 s after the close.
    # (The thread starts at the next accept after the first hand-off, the
    # second client's: a close never starts it. A process that reached no
    # such point again would linger what it queued at its exit.)
    spec = {"server": server(build, "--exit-delay-ms", "2000", conns=2),
            "clients": [client(build, "--forever", "--timeout-ms", "10000"),
                        client(build, delay_ms=200)]}
    spec["server"]["env"] = {"SAFECLOSE_LINGER_MS": "1000", "SAFECLOSE_IDLE_MS": "5000"}
    without, with_ = ab(spec)

    assert_failure_without_shim(without, "line")
    c = with_["clients"][0]
    assert (c["error_reply"], c["end"]) == ("complete", "eof"), dump(with_)
    # Cut off: the next request after the release draws a reset, about 1 s
    # after the close (which came before the EOF the client saw).
    assert c["reset_ms"] >= 1000, dump(with_)
    assert c["reset_ms"] - c["eof_ms"] <= 1000 + 500, dump(with_)
    assert server_stats(with_)["open_sockets_at_exit"] == 0, dump(with_)


def test_cap_makes_room_rather_than_falling_back(ab, build):
    # SAFECLOSE_MAX_LINGER=1 with 4 failing clients at once: every close is
    # handed off (none falls back to the no-wait treatment); past the cap
    # the thread ends an older linger to make room, and never holds more
    # than one. (test_hostile.py: that the right one is ended.)
    spec = {"server": server(build, "--io", "epoll", conns=4),
            "clients": [client(build, delay_ms=5 * i) for i in range(4)]}
    spec["server"]["env"] = {"SAFECLOSE_MAX_LINGER": "1", "SAFECLOSE_LOG": "debug"}
    without, with_ = ab(spec)

    assert aborts(without) > 0, dump(without)
    exit_line = [l for l in with_["server"]["stderr"].splitlines() if " exit: " in l]
    assert exit_line, dump(with_)
    counts = exit_line[-1].split(" exit: ")[1]
    handed, fallbacks = int(counts.split()[0]), int(counts.split(", ")[2].split()[0])
    peak = int(counts.split(", ")[4].split()[0])
    assert (handed, fallbacks, peak) == (4, 0, 1), exit_line
    assert server_stats(with_)["errors"] == 0, dump(with_)


def test_fork_after_a_lingering_close(ab, build):
    # Right after each close the server forks a helper (a CGI, a logger):
    # the helper must not hold the socket the parent's thread lingers on.
    spec = {"server": server(build, "--fork-helper"), "clients": [client(build)]}
    without, with_ = ab(spec)

    assert_failure_without_shim(without, "line")
    c = with_["clients"][0]
    assert (c["error_reply"], c["end"]) == ("complete", "eof"), dump(with_)
    assert aborts(with_) == 0, dump(with_)
    assert server_stats(with_)["helper_max_sockets"] == 0, dump(with_)


def under_a_shell(server_spec):
    """The server as the child of a shell, as under a service manager: not
    the direct child of its namespace's init, which might end the namespace
    with it (as container inits like tini do)."""
    return dict(server_spec, argv=["/bin/sh", "-c", '"$@"; exit $?', "sh"] + server_spec["argv"])


@pytest.mark.parametrize("ending,args", [("exit", []), ("exec", ["--then-exec", "/bin/true"])])
def test_exit_and_exec_do_not_wait_for_lingering_sockets(ab, build, ending, args):
    # pipeserver ends right after its one connection, whose client keeps
    # sending after the reply and never closes: it returns from main, or
    # replaces itself with /bin/true (an upgrade re-exec). Neither waits
    # (and SAFECLOSE_EXIT_WAIT_MS=0 cuts nothing short any more): the server
    # process is gone at once, and the linger goes on after it, in the heir,
    # until SAFECLOSE_LINGER_MS (2 s). The client gets the whole reply and
    # the end of stream, and is cut off only at that bound, well after the
    # server has exited.
    spec = {"server": dict(under_a_shell(server(build, *args)),
                           env={"SAFECLOSE_LINGER_MS": "2000", "SAFECLOSE_EXIT_WAIT_MS": "0"}),
            "clients": [client(build, "--forever", "--timeout-ms", "8000")]}
    without, with_ = ab(spec)

    assert_failure_without_shim(without, "line")
    c = with_["clients"][0]
    assert (c["error_reply"], c["end"]) == ("complete", "eof"), dump(with_)
    assert c["reset_ms"] >= 2000, dump(with_)
    srv = with_["server"]
    assert (srv["rc"], srv["stopped_by"]) == (0, "exit"), dump(with_)
    assert srv["exited_s"] is not None and srv["exited_s"] < c["reset_ms"] / 1000 - 1, dump(with_)


def test_exit_of_a_container_inits_child_lingers_in_place(ab, build):
    # The same server as the direct child of its pid namespace's init (the
    # scenario runner here; tini or docker --init in a container, which end
    # the namespace, and so would kill a heir, as soon as their child
    # exits). There the exit lingers in place, as it did before the heir:
    # the server exits only once the linger is over, at SAFECLOSE_LINGER_MS
    # (2 s, within SAFECLOSE_EXIT_WAIT_MS), and the reply still arrives whole.
    spec = {"server": dict(server(build), env={"SAFECLOSE_LINGER_MS": "2000"}),
            "clients": [client(build, "--forever", "--timeout-ms", "8000")]}
    without, with_ = ab(spec)

    assert_failure_without_shim(without, "line")
    c = with_["clients"][0]
    assert (c["error_reply"], c["end"]) == ("complete", "eof"), dump(with_)
    assert c["reset_ms"] >= 2000, dump(with_)
    srv = with_["server"]
    assert (srv["rc"], srv["stopped_by"]) == (0, "exit"), dump(with_)
    assert srv["exited_s"] is not None and srv["exited_s"] >= 1.5, dump(with_)
