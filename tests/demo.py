#!/usr/bin/python3
"""make demo: the original report, run twice in fresh network namespaces,
without and with the shim, the outcomes side by side.

A client pipelines requests; the server answers them in order, request 13
fails, the server writes a 1 000 000-byte error reply and closes while the
client's next requests are unread. Loopback is limited to 20 mbit/s so the
reply is still on its way when the server closes, as on a real link."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness.netns import run_in_namespace  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(REPO, "build")
ERROR_SIZE = 1000000


def scenario(preload):
    return {
        "server": {"argv": [os.path.join(BUILD, "pipeserver"), "--conns", "1",
                            "--error-size", str(ERROR_SIZE)],
                   "ready": "line", "exits": True, "preload": preload},
        "clients": [{"argv": [os.path.join(BUILD, "pipeclient"),
                              "--connect", "127.0.0.1:7000"]}],
    }


def rows(result):
    client = result["clients"][0]
    counters = result["counters"]
    reply = client.get("error_reply", "?")
    return [
        ("replies before the failure", "%s of 12" % client.get("ok_replies", "?")),
        ("error reply (%d bytes)" % ERROR_SIZE, reply),
        ("bytes received", str(client.get("bytes", "?"))),
        ("connection ended with", "clean EOF" if client.get("end") == "eof"
         else client.get("end", "?")),
        ("TcpExtTCPAbortOnClose", str(counters["TCPAbortOnClose"])),
        ("TcpExtTCPAbortOnData", str(counters["TCPAbortOnData"])),
        ("RSTs sent (TcpOutRsts)", str(counters["OutRsts"])),
    ]


def main():
    shim = os.path.join(BUILD, "libsafeclose.so")
    without = run_in_namespace(scenario(None))
    with_ = run_in_namespace(scenario(shim))
    for r in (without, with_):
        if r["errors"]:
            print("the scenario did not run as specified: %s" % r["errors"])
            return 1
    print(__doc__.split("\n\n")[1].replace("\n", " "))
    print()
    fmt = "%-28s %-24s %s"
    print(fmt % ("", "plain close()", "LD_PRELOAD=libsafeclose.so"))
    print(fmt % ("", "-" * 13, "-" * 26))
    for (label, a), (_, b) in zip(rows(without), rows(with_)):
        print(fmt % (label, a, b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
