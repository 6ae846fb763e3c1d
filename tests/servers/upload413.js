// upload413.js: an upload endpoint written with Node's own http module that
// rejects a body over its limit the way many Node apps do: it answers 413
// from the headers alone, never reading the body, and lets the connection go
// while the client is still sending.
//   end:     res.end() with "Connection: close": Node's http module ends the
//            socket itself (shutdown SHUT_WR, then close once it is finished)
//   destroy: res.end(reply, () => req.socket.destroy()), the reply handed to
//            the kernel, then the socket destroyed at once
// libuv closes descriptors with syscall(SYS_close), not close().
// usage: node upload413.js PORT LIMIT ERROR_SIZE CONNS end|destroy
'use strict';
const http = require('http');
const [port, limit, errorSize, conns] = process.argv.slice(2, 6).map(Number);
const mode = process.argv[6];
if (mode !== 'end' && mode !== 'destroy') throw new Error('mode: end|destroy');
const reply = Buffer.alloc(errorSize, 'payload too large\n');
let done = 0;

const server = http.createServer((req, res) => {
  if (Number(req.headers['content-length']) > limit) {
    res.writeHead(413, {'Content-Type': 'text/plain', 'Content-Length': reply.length,
                        'Connection': 'close'});
    if (mode === 'end') res.end(reply);
    else res.end(reply, () => req.socket.destroy());
    return;
  }
  req.resume();
  req.on('end', () => res.end('ok\n'));
});
server.on('connection', (sock) => {
  sock.on('error', () => {});
  sock.on('close', () => {
    if (++done === conns) server.close(() => { console.log(JSON.stringify({conns: done})); });
  });
});
server.listen(port, '127.0.0.1', () => console.log(`READY ${port}`));
