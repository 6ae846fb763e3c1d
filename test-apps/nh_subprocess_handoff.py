"""nh_subprocess_handoff.py: Python's subprocess hands an accepted connection
to a handler as its stdin and stdout; the server closes its copy at once,
with the client's second request unread. The handler reads that request and
writes a reply big enough to be still queued; the client must receive all of
it, then end-of-file. With close_fds (the default) Python 3.11 starts the
child with vfork; without it, with posix_spawn and its dup2 file actions.
Also: a vfork'd child that fails to exec reports its errno to the parent."""
import os
import socket
import subprocess
import sys

REPLY_SIZE = 2_000_000
REQUEST = b"GET /\n"
HANDLER = ("import os\n"
           "os.read(0, %d)\n"
           "data = b'r' * %d\n"
           "while data:\n"
           "    data = data[os.write(1, data):]\n" % (len(REQUEST), REPLY_SIZE))


def connection():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    client.connect(listener.getsockname())
    conn, _ = listener.accept()  # close-on-exec, as Python makes every socket
    listener.close()
    client.sendall(REQUEST + REQUEST)
    assert conn.recv(len(REQUEST), socket.MSG_WAITALL) == REQUEST
    return conn, client


def hand_over(close_fds):
    conn, client = connection()
    handler = subprocess.Popen([sys.executable, "-c", HANDLER], stdin=conn.fileno(),
                               stdout=conn.fileno(), close_fds=close_fds)
    conn.close()
    print("close_fds=%s: server closed its copy" % close_fds)
    got = 0
    while True:
        chunk = client.recv(65536)
        if not chunk:
            break
        got += len(chunk)
    print("  client received", "all" if got == REPLY_SIZE else "part" if got else "none",
          "of the reply, then end-of-file")
    client.close()
    print("  handler exited", handler.wait())


hand_over(close_fds=True)
hand_over(close_fds=False)
try:
    subprocess.Popen(["/nonexistent/missing"], close_fds=True)
except OSError as e:
    print("failed exec reported:", type(e).__name__, os.strerror(e.errno))
