"""Hostile peers (issue 12, item 3): clients that go on sending after their
error reply hold every lingering slot. SAFECLOSE_MAX_LINGER is a soft cap:
a newer close still lingers, and the thread ends the worst older linger
(a peer that has all our output acknowledged and discards the most) to
make room, so ordinary clients that arrive then still get their whole
reply. A slowloris peer (a byte a second) and a flood (sends without end)
are each cut off at SAFECLOSE_LINGER_MS; six times the cap of them at once
leave the server answering others at once, within the cap, never worse
than without the shim (hostilepeer)."""

import re

import pytest

from harness.checks import aborts
from test_background import client, dump, server
from test_pipeline import V4, server_stats

HOSTILE, ORDINARY, CAP = 64, 8, 16
LINGER_MS = 2500


# What the shim may add to a server's peak memory under a hostile load: its
# own code and data pages, its thread's stack and malloc arena, the linger
# slots, the pages of the books and descriptor tables it touches (measured
# here: 1 to 3 MB for these 56 connections).
SHIM_PEAK_KB = 6144


def test_ordinary_clients_get_their_reply_while_hostile_peers_hold_every_slot(ab, build):
    # 64 clients get their error reply and then send on without end (a
    # request every 10 ms, for 5 s); 8 ordinary pipelining clients come 1.5 s
    # later, when every one of the 16 slots is held by a hostile peer; they
    # send a request every millisecond, so that each error close finds input
    # unread and its reply still in flight: without the shim the kernel's
    # reset cuts every ordinary reply short, and so did the shim's no-wait
    # fallback past the cap (before the cap made room: 8 of 8 lost here).
    hostile = [client(build, "--forever", "--timeout-ms", "5000", delay_ms=5 * (i % 8))
               for i in range(HOSTILE)]
    ordinary = [client(build, "--gap-ms", "1", delay_ms=1500 + 30 * i)
                for i in range(ORDINARY)]
    spec = {"rate": "200mbit",
            "server": dict(server(build, "--io", "epoll", conns=HOSTILE + ORDINARY),
                           env={"SAFECLOSE_MAX_LINGER": str(CAP),
                                "SAFECLOSE_LINGER_MS": str(LINGER_MS),
                                "SAFECLOSE_LOG": "debug"}),
            "clients": hostile + ordinary}
    without, with_ = ab(spec)

    assert not without["errors"] and not with_["errors"], dump(with_)
    lost = [c for c in without["clients"][HOSTILE:]
            if (c.get("error_reply"), c.get("end")) != ("complete", "eof")]
    assert lost and aborts(without) > 0, dump(without)

    for c in with_["clients"][HOSTILE:]:
        assert (c["error_reply"], c["end"]) == ("complete", "eof"), dump(with_)
    stderr = with_["server"]["stderr"]
    # Room was made by ending older lingers, never by a close that does not wait.
    exit_line = [l for l in stderr.splitlines() if " exit: " in l][-1]
    handed, fallbacks, peak = re.search(
        r"(\d+) handed off, \d+ released, (\d+) fallbacks, \d+ lingering, (\d+) at most",
        exit_line).groups()
    assert (int(handed), int(fallbacks)) == (HOSTILE + ORDINARY, 0), exit_line
    assert stderr.count("end: made room for a newer close") >= ORDINARY, stderr
    # The thread never held more than the cap; nothing lingered past its bound.
    assert int(peak) <= CAP, exit_line
    times = [int(t) for t in re.findall(r"lingered (?:after )?(\d+) ms", stderr)]
    assert times and max(times) <= LINGER_MS + 200, stderr


def lingers(result):
    """(ms, end) of every linger the server's debug log reports."""
    return [(int(ms), end) for ms, end in
            re.findall(r"lingered (?:after )?(\d+) ms.* end: (.*)", result["server"]["stderr"])]


def test_idle_bound_is_shorter_under_load(netns_run, build):
    # Four clients get their reply and then hold the connection open,
    # silent, for 3 s before closing. With SAFECLOSE_MAX_LINGER=4, while
    # more than half of the cap is in use (3 or 4 lingers) the idle bound
    # is SAFECLOSE_IDLE_UNDER_LOAD_MS (1 s), not SAFECLOSE_IDLE_MS (5 s):
    # two lingers end on it, well before their peers close; the last two,
    # at half the cap, wait for their peers' FINs. With a cap of 16 all
    # four wait for them.
    def run(cap):
        spec = {"server": dict(server(build, "--io", "epoll", conns=4),
                               env={"SAFECLOSE_MAX_LINGER": str(cap), "SAFECLOSE_LOG": "debug"}),
                "clients": [client(build, "--requests", "1", "--bad-at", "1",
                                   "--hold-ms", "3000") for _ in range(4)]}
        spec["server"]["preload"] = build.shim
        result = netns_run(spec)
        for c in result["clients"]:
            assert (c["error_reply"], c["end"]) == ("complete", "eof"), dump(result)
        ends = sorted(lingers(result))
        assert len(ends) == 4, dump(result)
        return ends

    loaded = run(4)
    assert [end for _, end in loaded] == ["idle bound"] * 2 + ["peer finished"] * 2, loaded
    assert loaded[1][0] < 2500 <= loaded[2][0], loaded
    unloaded = run(16)
    assert [end for _, end in unloaded] == ["peer finished"] * 4, unloaded


def hostile(build, mode, *args, delay_ms=0):
    return {"argv": [build.repo + "/build/hostilepeer", "--connect", V4, "--mode", mode, *args],
            "delay_ms": delay_ms}


@pytest.mark.parametrize("mode,args", [("slowloris", ["--gap-ms", "1000"]), ("flood", [])])
def test_a_peer_that_never_stops_is_cut_off_at_the_total_bound(ab, build, mode, args):
    # After its error reply the peer sends on for ever: a byte a second
    # (slowloris: the idle bound, 1.5 s, never passes) or as fast as the
    # link takes (flood). The linger ends at SAFECLOSE_LINGER_MS (3 s) and
    # not before the idle bound (the shim's log says how long it lasted; the
    # peer sees the reset at its next send after it); the peer got its
    # whole reply first. Without the shim the reply is reset at once.
    spec = {"server": dict(server(build, "--error-size", "100000"),
                           env={"SAFECLOSE_LINGER_MS": "3000", "SAFECLOSE_IDLE_MS": "1500",
                                "SAFECLOSE_LOG": "debug"}),
            "clients": [hostile(build, mode, *args, "--timeout-ms", "8000")],
            "rate": "200mbit"}
    without, with_ = ab(spec)
    w, s = without["clients"][0], with_["clients"][0]
    print("%s without the shim: %s\n%s with the shim: %s" % (mode, w, mode, s))
    assert (w["error_reply"], w["end"]) != ("complete", "eof") and aborts(without) > 0, dump(without)
    assert (s["error_reply"], s["end"]) == ("complete", "eof"), dump(with_)
    assert s["sent_after_eof"] > 0 and s["reset_ms"] > 0, dump(with_)
    (ms, end), = lingers(with_)
    assert 3000 <= ms <= 3000 + 200 and end == "total bound", dump(with_)
    held = s["reset_ms"] - s["eof_ms"]     # the server's close came before the EOF
    assert 3000 <= held <= 3000 + (1000 if mode == "slowloris" else 0) + 500, dump(with_)


def test_many_times_the_cap_of_slowloris_and_flood_peers(ab, build):
    # 48 hostile peers (24 slowloris, 24 flood: six times
    # SAFECLOSE_MAX_LINGER=8) get their error reply and send on for ever;
    # 8 ordinary pipelining clients come 1 s later, when every slot is held.
    # The server answers them at once (each has its whole reply well before
    # any hostile linger could end at SAFECLOSE_LINGER_MS), the thread never
    # holds more than the cap (its descriptors: one per linger), no linger
    # lasts past its bound, no client, hostile or ordinary, fares worse
    # than without the shim, and the server's peak memory stays within
    # SHIM_PEAK_KB of its own without the shim.
    n_hostile, n_ordinary, cap, linger_ms = 48, 8, 8, 2500
    peers = [hostile(build, "slowloris" if i % 2 else "flood", "--gap-ms", "300",
                     "--timeout-ms", "8000", delay_ms=10 * (i % 8)) for i in range(n_hostile)]
    ordinary = [client(build, "--gap-ms", "1", delay_ms=1000 + 30 * i) for i in range(n_ordinary)]
    spec = {"rate": "1gbit",
            "server": dict(server(build, "--io", "epoll", "--error-size", "300000",
                                  conns=n_hostile + n_ordinary),
                           env={"SAFECLOSE_MAX_LINGER": str(cap),
                                "SAFECLOSE_LINGER_MS": str(linger_ms),
                                "SAFECLOSE_IDLE_MS": "2000", "SAFECLOSE_LOG": "debug"}),
            "clients": peers + ordinary}
    without, with_ = ab(spec)
    assert not without["errors"] and not with_["errors"], dump(with_)

    def whole(result):
        return [(c.get("error_reply"), c.get("end")) == ("complete", "eof")
                for c in result["clients"]]
    w, s = whole(without), whole(with_)
    print("whole replies without the shim: %d hostile, %d ordinary; with: %d, %d"
          % (sum(w[:n_hostile]), sum(w[n_hostile:]), sum(s[:n_hostile]), sum(s[n_hostile:])))
    assert not all(w[n_hostile:]) and aborts(without) > 0, dump(without)
    assert all(s[n_hostile:]), dump(with_)
    assert all(b or not a for a, b in zip(w, s)), "worse with the shim than without\n" + dump(with_)
    for c in with_["clients"][n_hostile:]:
        assert 0 <= c["eof_ms"] < linger_ms, dump(with_)
    stderr = with_["server"]["stderr"]
    exit_line = [l for l in stderr.splitlines() if " exit: " in l][-1]
    handed, fallbacks, peak = re.search(
        r"(\d+) handed off, \d+ released, (\d+) fallbacks, \d+ lingering, (\d+) at most",
        exit_line).groups()
    assert int(fallbacks) == 0 and int(peak) <= cap, exit_line
    times = [int(t) for t in re.findall(r"lingered (?:after )?(\d+) ms", stderr)]
    print("lingers: %d, longest %d ms" % (len(times), max(times)))
    assert len(times) == int(handed) and max(times) <= linger_ms + 200, stderr
    alone, under = server_stats(without), server_stats(with_)
    print("server's peak memory: %d kB alone, %d kB under the shim"
          % (alone["peak_rss_kb"], under["peak_rss_kb"]))
    assert 0 < under["peak_rss_kb"] <= alone["peak_rss_kb"] + SHIM_PEAK_KB, dump(with_)


def percentiles(samples):
    """(p50, p99, max) of a list of numbers (nearest rank)."""
    s = sorted(samples)
    rank = lambda p: s[min(len(s) - 1, max(0, -(-len(s) * p // 100) - 1))]
    return rank(50), rank(99), s[-1]


def test_ordinary_latency_while_hostile_peers_hold_every_slot(ab, build):
    # 32 hostile peers (slowloris and flood, four times SAFECLOSE_MAX_LINGER=8)
    # take their error reply and send on; 1 s later, with every slot held,
    # 8 interactive clients each make 40 requests, one at a time (2 ms
    # apart), the last one failed by the server (its close lingers too, so
    # a slot has to be made for it). Their request latency (request sent to
    # reply complete) is measured without and with the shim and printed;
    # with it, p99 may be at most max(3x, +50 ms) of without: coarse enough
    # for a loaded 2-core machine, and still far below what a server stalled
    # by the shim shows (a close that waits, a thread that holds the loop
    # up: one stall of the loop lands on every client's request in flight).
    n_hostile, n_ordinary, n_requests, cap = 32, 8, 40, 8
    peers = [hostile(build, "slowloris" if i % 2 else "flood", "--gap-ms", "300",
                     "--timeout-ms", "5000", delay_ms=10 * (i % 8)) for i in range(n_hostile)]
    ordinary = [client(build, "--closed-loop", "--requests", str(n_requests),
                       "--bad-at", str(n_requests), "--gap-ms", "2", delay_ms=1000 + 20 * i)
                for i in range(n_ordinary)]
    spec = {"rate": "1gbit",
            "server": dict(server(build, "--io", "epoll", "--error-size", "300000",
                                  "--fail-at", "0", conns=n_hostile + n_ordinary),
                           env={"SAFECLOSE_MAX_LINGER": str(cap), "SAFECLOSE_LINGER_MS": "2500",
                                "SAFECLOSE_IDLE_MS": "2000"}),
            "clients": peers + ordinary}
    without, with_ = ab(spec)
    assert not without["errors"] and not with_["errors"], dump(with_)

    def latencies(result):
        got = [c for c in result["clients"][n_hostile:]]
        assert all(len(c.get("latency_us", [])) == n_requests - 1 for c in got), dump(result)
        return [us / 1000 for c in got for us in c["latency_us"]]
    alone, under = percentiles(latencies(without)), percentiles(latencies(with_))
    print("ordinary request latency under hostile load, ms (p50, p99, max): "
          "without the shim %.2f %.2f %.2f; with %.2f %.2f %.2f" % (*alone, *under))
    for c in with_["clients"][n_hostile:]:
        assert (c["error_reply"], c["end"]) == ("complete", "eof"), dump(with_)
    assert under[1] <= max(3 * alone[1], alone[1] + 50), (alone, under)
