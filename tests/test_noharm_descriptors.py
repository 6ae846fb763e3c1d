"""No harm, descriptors: each test runs one test-apps/nh_*.c program without
and with the shim (the `noharm` fixture) and asserts it saw the same thing.

- failing calls act on nothing (dup3, close_range refused by the kernel);
"""


def test_failing_calls_act_on_nothing(noharm):
    plain, _ = noharm("nh_failing_calls")
    assert "EINVAL" in plain.stdout and "EPIPE" not in plain.stdout
