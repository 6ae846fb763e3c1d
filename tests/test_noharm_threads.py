"""No harm, threads: each test runs one test-apps/nh_*.c program without and
with the shim (the `noharm` fixture) and asserts it saw the same thing.

- a cancellation pending at close() ends the thread where glibc's would,
  before the shim acts (no descriptor kept, no exit waiting for it);
- no thread in a program that never lingers, none started in a signal handler;
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
