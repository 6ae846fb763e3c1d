"""The two verdicts every A/B scenario asserts, for both client protocols.

kind "line" (pipeclient's default protocol): the client JSON has
    sent, bytes, ok_replies, error_reply ("complete"|"partial"|"none"),
    error_id, end ("eof"|"ECONNRESET"|...).
    Clean: error_reply == "complete" and end == "eof".
kind "http": the client JSON has
    sent, bytes, status, content_length, body_bytes, first_complete, end.
    Clean: status 200, first_complete, body_bytes == content_length, end == "eof".

Without the shim the failure must really be there: the client did not get a
clean outcome AND the kernel counted an abortive close
(TCPAbortOnClose + TCPAbortOnData > 0). With the shim: a clean outcome for
every client, both abort counters 0 and no RST sent at all (OutRsts 0).
"""

import json

REQUIRED = {
    "line": ("sent", "bytes", "ok_replies", "error_reply", "error_id", "end"),
    "http": ("sent", "bytes", "status", "content_length", "body_bytes",
             "first_complete", "end"),
}


def _fail(result, why):
    raise AssertionError("%s\nfull result:\n%s" % (why, json.dumps(result, indent=1)))


def _clients(result, kind):
    """The clients' reports, each checked to be a well-formed report of kind."""
    if kind not in REQUIRED:
        raise ValueError("unknown client kind %r" % kind)
    clients = result["clients"]
    if not clients:
        _fail(result, "no client ran")
    for i, c in enumerate(clients):
        missing = [k for k in REQUIRED[kind] if k not in c]
        if missing:
            _fail(result, "client %d printed no usable %s report (missing %s)"
                  % (i, kind, missing))
        if not c["sent"]:
            _fail(result, "client %d sent nothing: the scenario did not run" % i)
    return clients


def is_clean(client, kind, expect_length=None):
    if kind == "line":
        return client["error_reply"] == "complete" and client["end"] == "eof"
    return (client["status"] == 200
            and client["first_complete"] is True
            and client["content_length"] is not None
            and (expect_length is None or client["content_length"] == expect_length)
            and client["body_bytes"] == client["content_length"]
            and client["end"] == "eof")


def aborts(result):
    c = result["counters"]
    return c["TCPAbortOnClose"] + c["TCPAbortOnData"]


def assert_failure_without_shim(result, kind):
    """The run without the shim shows the bug: lost reply or reset, and aborts counted."""
    if result["spec"]["server"].get("preload"):
        _fail(result, "this run had the shim preloaded; expected a run without it")
    clients = _clients(result, kind)
    if kind == "http":
        wrong = [i for i, c in enumerate(clients)
                 if c["status"] is not None and c["status"] != 200]
        if wrong:
            _fail(result, "clients %s got a non-200 status: not the failure under test" % wrong)
    if all(is_clean(c, kind) for c in clients):
        _fail(result, "without the shim every client got a clean, complete reply: "
                      "the scenario does not reproduce the failure, so it proves nothing")
    if aborts(result) <= 0:
        _fail(result, "without the shim a client failed but the kernel counted no "
                      "abortive close (TCPAbortOnClose + TCPAbortOnData == 0): "
                      "the failure is not the one under test")


def assert_clean_with_shim(result, kind, expect_length=None):
    """The run with the shim: every byte, a clean EOF, no abort, no RST."""
    srv = result["spec"]["server"]
    if not srv.get("preload"):
        _fail(result, "this run had no shim preloaded; expected a run with it")
    assert_clean(result, kind, expect_length)


def assert_clean(result, kind, expect_length=None):
    """assert_clean_with_shim's outcome checks alone, for a run that loads the
    shim its own way (the safeclose command)."""
    srv = result["spec"]["server"]
    if "cannot be preloaded" in result["server"]["stderr"]:
        _fail(result, "the dynamic loader refused the shim")
    clients = _clients(result, kind)
    bad = [i for i, c in enumerate(clients) if not is_clean(c, kind, expect_length)]
    if bad:
        _fail(result, "with the shim clients %s did not get a complete reply and a clean EOF"
              % bad)
    c = result["counters"]
    if c["TCPAbortOnClose"] or c["TCPAbortOnData"]:
        _fail(result, "with the shim the kernel still counted abortive closes: %s" % c)
    if c["OutRsts"]:
        _fail(result, "with the shim a RST was still sent (OutRsts %d)" % c["OutRsts"])
    if srv.get("exits") and result["server"]["rc"] != 0:
        _fail(result, "with the shim the server exited with rc %s" % result["server"]["rc"])
