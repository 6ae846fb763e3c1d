"""The two verdicts every A/B scenario asserts, for both client protocols.

kind "line" (pipeclient's default protocol): the client JSON has
    sent, bytes, ok_replies, error_reply ("complete"|"partial"|"none"),
    error_id, end ("eof"|"ECONNRESET"|...).
    Clean: error_reply == "complete" and end == "eof".
kind "http": the client JSON has
    sent, bytes, status, content_length, body_bytes, first_complete, end.
    Clean: status 200 (or the status the scenario expects: 413 for an upload
    refused), first_complete, body_bytes == content_length, end == "eof".

Without the shim the failure must really be there: the client did not get a
clean outcome AND the kernel counted an abortive close
(TCPAbortOnClose + TCPAbortOnData > 0). With the shim: a clean outcome for
every client, both abort counters 0 and no RST sent by the server's side
(server_rsts 0: the namespace's OutRsts also counts a client's ordinary RST
to a late duplicate ACK once its own socket is gone).

A sequential scenario (many clients one after the other against one server,
each with its own counters in "client_counters") asserts the same of every
run: assert_each_run_fails_without_shim, and assert_clean_with_shim, which
then also names the runs whose counters moved.
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
        # An upload cut short by the server sent bytes but no whole request.
        if not c.get("sent_bytes", c["sent"]):
            _fail(result, "client %d sent nothing: the scenario did not run" % i)
    return clients


def is_clean(client, kind, expect_length=None, expect_status=200):
    if kind == "line":
        return client["error_reply"] == "complete" and client["end"] == "eof"
    return (client["status"] == expect_status
            and client["first_complete"] is True
            and client["content_length"] is not None
            and (expect_length is None or client["content_length"] == expect_length)
            and client["body_bytes"] == client["content_length"]
            and client["end"] == "eof")


def aborts(result):
    c = result["counters"]
    return c["TCPAbortOnClose"] + c["TCPAbortOnData"]


def assert_failure_without_shim(result, kind, expect_status=200):
    """The run without the shim shows the bug: lost reply or reset, and aborts counted."""
    if result["spec"]["server"].get("preload"):
        _fail(result, "this run had the shim preloaded; expected a run without it")
    clients = _clients(result, kind)
    if kind == "http":
        wrong = [i for i, c in enumerate(clients)
                 if c["status"] is not None and c["status"] != expect_status]
        if wrong:
            _fail(result, "clients %s got a status other than %d: not the failure under test"
                  % (wrong, expect_status))
    if all(is_clean(c, kind, expect_status=expect_status) for c in clients):
        _fail(result, "without the shim every client got a clean, complete reply: "
                      "the scenario does not reproduce the failure, so it proves nothing")
    if aborts(result) <= 0:
        _fail(result, "without the shim a client failed but the kernel counted no "
                      "abortive close (TCPAbortOnClose + TCPAbortOnData == 0): "
                      "the failure is not the one under test")


def assert_no_server_rst(result):
    if result.get("server_rsts") is None:
        _fail(result, "no count of the RSTs the server's side sent")
    if result["server_rsts"]:
        _fail(result, "with the shim the server's side still sent %d RSTs"
              % result["server_rsts"])


def assert_each_run_fails_without_shim(result, kind, expect_status=200):
    """A sequential scenario without the shim: the bug shows (as above), and
    the kernel reset the connection of every single run."""
    assert_failure_without_shim(result, kind, expect_status)
    runs = _run_counters(result)
    quiet = [i for i, c in enumerate(runs) if c["TCPAbortOnClose"] + c["TCPAbortOnData"] == 0]
    if quiet:
        _fail(result, "without the shim runs %s counted no abortive close: the scenario "
                      "does not reproduce the failure in every run" % quiet)


def _run_counters(result):
    runs = result.get("client_counters")
    if runs is None or len(runs) != len(result["clients"]):
        _fail(result, "not a sequential scenario: no counters per client")
    return runs


def assert_clean_with_shim(result, kind, expect_length=None, expect_status=200):
    """The run with the shim: every byte, a clean EOF, no abort, no RST."""
    srv = result["spec"]["server"]
    if not srv.get("preload"):
        _fail(result, "this run had no shim preloaded; expected a run with it")
    assert_clean(result, kind, expect_length, expect_status)


def assert_clean(result, kind, expect_length=None, expect_status=200):
    """assert_clean_with_shim's outcome checks alone, for a run that loads the
    shim its own way (the safeclose command)."""
    srv = result["spec"]["server"]
    if "cannot be preloaded" in result["server"]["stderr"]:
        _fail(result, "the dynamic loader refused the shim")
    clients = _clients(result, kind)
    bad = [i for i, c in enumerate(clients)
           if not is_clean(c, kind, expect_length, expect_status)]
    if bad:
        _fail(result, "with the shim clients %s did not get a complete reply and a clean EOF"
              % bad)
    if "client_counters" in result:
        moved = [i for i, c in enumerate(_run_counters(result))
                 if c["TCPAbortOnClose"] or c["TCPAbortOnData"]]
        if moved:
            _fail(result, "with the shim runs %s counted abortive closes" % moved)
    c = result["counters"]
    if c["TCPAbortOnClose"] or c["TCPAbortOnData"]:
        _fail(result, "with the shim the kernel still counted abortive closes: %s" % c)
    assert_no_server_rst(result)
    if srv.get("exits") and result["server"]["rc"] != 0:
        _fail(result, "with the shim the server exited with rc %s" % result["server"]["rc"])
