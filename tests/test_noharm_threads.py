"""No harm, threads: each test runs one test-apps/nh_*.c program without and
with the shim (the `noharm` fixture) and asserts it saw the same thing.

- a cancellation pending at close() ends the thread where glibc's would,
  before the shim acts (no descriptor kept, no exit waiting for it);
- no thread in a program that never lingers, none started in a signal handler;
- unshare(CLONE_NEWUSER) and setns() still work once the thread runs;
"""


def test_cancelled_close(noharm):
    plain, _ = noharm("nh_cancel_close")
    assert "thread: cancelled" in plain.stdout
    assert "exit: returned at once" in plain.stdout


def test_no_thread_unless_lingering_and_none_from_a_signal_handler(noharm):
    # Clean connections linger nothing: no thread. A close() in a signal
    # handler (in a fork child, where no thread runs) queues its socket and
    # starts nothing; _exit lingers it in place, exit starts the thread.
    plain, _ = noharm("nh_thread_start")
    assert "threads after serving clean connections: 1" in plain.stdout
    assert plain.stdout.count("threads after the handler's close: 1") == 2


def test_unshare_and_setns_after_a_linger(noharm):
    # The shim's thread runs (a connection lingered, then a safe point):
    # calls that want the caller alone still succeed (the thread is paused
    # for a retry), and fail as they would without it.
    plain, _ = noharm("nh_unshare")
    assert "unshare(CLONE_NEWUSER): 0 ok" in plain.stdout
    assert "setns(own mount namespace): 0 ok" in plain.stdout
    assert "peer received: REPLY" in plain.stdout
