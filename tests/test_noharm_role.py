"""SAFECLOSE_ROLE: by default only connections the program accepted linger.

A client that closes a connection in the middle of a download means to abort
it, and the reset is how the sender learns to stop (CPython's asyncio test
close_peer_in_the_middle_of_receiving does exactly this). Under the default
role the connecting side keeps the kernel's behaviour; SAFECLOSE_ROLE=both
shows that the test can tell: the client's close then lingers and the sender
keeps sending into the drain.
"""


def test_client_abort_keeps_the_kernels_reset(noharm):
    plain, _ = noharm("nh_abort", "client")
    assert "sender stopped by a reset: yes" in plain.stdout


def test_role_both_lingers_on_connected_sockets_too(noharm):
    # (SAFECLOSE_DISCARD_MAX=0: the sender floods a peer that has all of
    # our, empty, output; the discard budget would end that linger at once.)
    plain, shimmed = noharm("nh_abort", "client",
                            shim_env={"SAFECLOSE_ROLE": "both", "SAFECLOSE_DISCARD_MAX": "0"},
                            check=False)
    assert "sender learned it: at once" in plain.stdout
    assert "sender learned it: late or never" in shimmed.stdout


def test_server_that_never_replied_still_resets_an_upload(noharm):
    """Nothing of the server's to protect: the close is an abort, as without
    the shim. SAFECLOSE_MODE=always shows the test can tell."""
    plain, _ = noharm("nh_abort", "upload")
    assert "uploader stopped by a reset: yes" in plain.stdout
    _, always = noharm("nh_abort", "upload",
                       shim_env={"SAFECLOSE_MODE": "always", "SAFECLOSE_DISCARD_MAX": "0"},
                       check=False)
    assert "uploader learned it: late or never" in always.stdout
