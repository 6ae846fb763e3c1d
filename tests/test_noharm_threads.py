"""No harm, threads: each test runs one test-apps/nh_*.c program without and
with the shim (the `noharm` fixture) and asserts it saw the same thing.

- a cancellation pending at close() ends the thread where glibc's would,
  before the shim acts (no descriptor kept, no exit waiting for it);
"""


def test_cancelled_close(noharm):
    plain, _ = noharm("nh_cancel_close")
    assert "thread: cancelled" in plain.stdout
    assert "exit: returned at once" in plain.stdout
