// pipeline.js: the pipelined request/response service of test-apps/pipeserver.c
// written the usual Node.js way: request 13 fails, the server writes its error
// reply and destroys the socket once the reply is handed to the kernel.
// libuv closes descriptors with syscall(SYS_close), not close().
// usage: node pipeline.js PORT ERROR_SIZE CONNS
'use strict';
const net = require('net');
const [port, errorSize, conns] = process.argv.slice(2).map(Number);
const FAIL_AT = 13, REPLY_SIZE = 1000;
const body = (n) => Buffer.alloc(n, 'abcdefghijklmnopqrstuvwxyz');
let done = 0;

const server = net.createServer((sock) => {
  let buf = '', n = 0, failed = false;
  sock.on('data', (chunk) => {
    if (failed) return;
    buf += chunk.toString('latin1');
    let i;
    while (!failed && (i = buf.indexOf('\n')) >= 0) {
      buf = buf.slice(i + 1);
      n++;
      if (n === FAIL_AT) {
        failed = true;
        sock.write(`ERR ${n} ${errorSize}\n`);
        sock.write(body(errorSize), () => sock.destroy());
      } else {
        sock.write(`OK ${n} ${REPLY_SIZE}\n`);
        sock.write(body(REPLY_SIZE));
      }
    }
  });
  sock.on('error', () => {});
  sock.on('close', () => {
    if (++done === conns) server.close(() => { console.log(JSON.stringify({conns: done})); });
  });
});
server.listen(port, '127.0.0.1', () => console.log(`READY ${port}`));
