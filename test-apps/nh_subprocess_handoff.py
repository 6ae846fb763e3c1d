"""nh_subprocess_handoff.py: Python's subprocess (which starts children with
vfork in 3.11) hands an accepted connection to a handler as its stdin and
stdout, with close_fds; the server closes its copy at once, with the client's
second request unread. The handler reads that request and writes a reply big
enough to be still queued; the client must receive all of it, then EOF.
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

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(4)
client = socket.socket()
client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
client.connect(listener.getsockname())
conn, _ = listener.accept()
listener.close()
client.sendall(REQUEST + REQUEST)
print("first request read:", conn.recv(len(REQUEST), socket.MSG_WAITALL) == REQUEST)

handler = subprocess.Popen([sys.executable, "-c", HANDLER], stdin=conn.fileno(),
                           stdout=conn.fileno(), close_fds=True)
conn.close()
print("server closed its copy")
got = 0
while True:
    chunk = client.recv(65536)
    if not chunk:
        break
    got += len(chunk)
print("client received", "all" if got == REPLY_SIZE else "part" if got else "none",
      "of the reply, then end-of-file")
client.close()
print("handler exited", handler.wait())

try:
    subprocess.Popen(["/nonexistent/missing"], close_fds=True)
except OSError as e:
    print("failed exec reported:", type(e).__name__, os.strerror(e.errno))
