"""shutdown(SHUT_RDWR), then close() and exit, while the client still sends
(issue 9, item 20): the advice usually given for the lost-reply problem, and
what CherryPy's cheroot, PHP's built-in server and socat's fork children do.
Without the shim the read side is shut for real in FIN_WAIT, so the kernel
resets the client's next request and drops the reply still in flight. With
the shim every byte arrives, the connection ends in a clean EOF, and nothing
is reset in any run: the real SHUT_RD the program asked for is never carried
out once the program has let go of the socket."""

import json

import pytest

from harness.checks import aborts, assert_no_server_rst, is_clean
from test_pipeline import V4

RUNS = 30
ERROR_SIZE = 100_000   # 40 ms at 20 mbit/s: the client is still sending
SENDS_FOR_MS = 700     # each client sends a request every 10 ms this long
PORT = int(V4.rsplit(":", 1)[1])


def spec(build):
    # pipeserver's fork model: each child serves one connection, fails
    # request 13 with the error reply, shutdown(SHUT_RDWR), close(), exit(0).
    clients = [{"argv": [build.pipeclient, "--connect", V4, "--forever",
                         "--timeout-ms", str(SENDS_FOR_MS)],
                "delay_ms": 40 * i} for i in range(RUNS)]
    return {"server": {"argv": [build.pipeserver, "--listen", V4, "--model", "fork",
                                "--conns", str(RUNS), "--error-size", str(ERROR_SIZE),
                                "--close", "shutdown-rdwr"],
                       "ready": "line", "exits": True},
            "clients": clients,
            "rsts_from_port": PORT}


def clean(c):
    return (c.get("error_reply"), c.get("end"), c.get("reset_ms")) == ("complete", "eof", -1)


def test_shutdown_rdwr_close_exit_while_the_client_sends(ab, build):
    without, with_ = ab(spec(build))
    dump = lambda r: json.dumps(r, indent=1)

    assert not all(clean(c) for c in without["clients"]), dump(without)
    assert aborts(without) > 0, dump(without)
    assert without["counters"]["RstsFromPort"] > 0, dump(without)

    assert len(with_["clients"]) == RUNS
    unclean = [i for i, c in enumerate(with_["clients"]) if not clean(c)]
    assert not unclean, "runs %s not clean\n%s" % (unclean, dump(with_))
    assert aborts(with_) == 0, dump(with_)
    # No RST from the server's side at all, counted or not (a socket closed
    # in FIN_WAIT2 answers late data with one that no abort counter sees).
    # Not OutRsts, which counts the clients' kernels too: when a client's
    # FIN waits in the rate limit longer than its loss probe, it is sent
    # again, the server's TIME_WAIT acknowledges both, and the second ACK
    # finds the client's socket gone, which answers it with a RST.
    assert with_["counters"]["RstsFromPort"] == 0, dump(with_)


def test_shutdown_rdwr_then_close_a_moment_later(ab, build):
    # The same, with a small error reply (acknowledged at once) and a pause of
    # 5 ms between the shutdown and the close, as a server that logs there.
    # The thread the shutdown woke found the output acknowledged and shut
    # the read side for real before the close: the client's next request
    # was reset (TCPAbortOnData) although the program was letting go.
    spec = {"server": {"argv": [build.pipeserver, "--listen", V4, "--model", "fork",
                                "--conns", "3", "--error-size", "1000",
                                "--close", "shutdown-rdwr", "--close-pause-ms", "5"],
                       "ready": "line", "exits": True},
            "clients": [{"argv": [build.pipeclient, "--connect", V4, "--forever",
                                  "--timeout-ms", "400"],
                         "delay_ms": 300 * i} for i in range(3)]}
    without, with_ = ab(spec)
    dump = lambda r: json.dumps(r, indent=1)

    # Without the shim the closed socket answers the next request with a
    # RST (from its FIN_WAIT2 remnant, which counts no abort).
    assert not any(clean(c) for c in without["clients"]), dump(without)
    assert without["counters"]["OutRsts"] > 0, dump(without)
    unclean = [i for i, c in enumerate(with_["clients"]) if not clean(c)]
    assert not unclean, "runs %s not clean\n%s" % (unclean, dump(with_))
    assert aborts(with_) == 0, dump(with_)
    assert_no_server_rst(with_)


PHP = "/usr/bin/php"


@pytest.mark.needs("php-cli")
def test_php_builtin_server_while_the_client_sends(ab, build, http_docroot):
    # PHP's built-in web server (php -S, Debian's php-cli) ends every
    # connection with shutdown(SHUT_RDWR) and close(). The client asks for a
    # 2 MB file and keeps sending requests every 50 ms for 1.5 s, also after
    # the reply. Without the shim the reply is cut by a reset; the shim
    # before this fix delivered it but reset the next request all the same
    # (TCPAbortOnData 1 in every run).
    spec = {"server": {"argv": [PHP, "-S", "127.0.0.1:8000", "-t", str(http_docroot)],
                       "ready": {"listen": 8000}, "exits": False},
            "clients": [{"argv": [build.pipeclient, "--connect", "127.0.0.1:8000",
                                  "--proto", "http", "--path", "/big.bin", "--forever",
                                  "--gap-ms", "50", "--timeout-ms", "1500"]}]}
    without, with_ = ab(spec)
    dump = lambda r: json.dumps(r, indent=1)
    length = (http_docroot / "big.bin").stat().st_size

    assert not is_clean(without["clients"][0], "http", length), dump(without)
    assert aborts(without) > 0, dump(without)
    c = with_["clients"][0]
    assert is_clean(c, "http", length) and c["reset_ms"] == -1, dump(with_)
    assert aborts(with_) == 0, dump(with_)
    assert_no_server_rst(with_)
