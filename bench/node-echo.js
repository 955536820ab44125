// node-echo.js: the reference peer for `make bench`, an echo server written
// the way many Node.js programmers would write it: the net module, and
// socket.pipe(socket), which also stops reading from a client that does not
// read (backpressure). Same interface as the C servers' -p and -b.
'use strict';
const net = require('net');

let port = 9000;
let host = '127.0.0.1';
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i += 2) {
  if (args[i] === '-p') port = Number(args[i + 1]);
  else if (args[i] === '-b') host = args[i + 1];
  else if (args[i] === '-q') i -= 1; // no per-connection log lines anyway
  else {
    console.error(`node-echo: unknown option '${args[i]}'`);
    process.exit(2);
  }
}

const server = net.createServer((socket) => {
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
server.on('error', (err) => {
  console.error(`node-echo: ${err.message}`);
  process.exit(1);
});
server.listen({ port, host, backlog: 4096 }, () => {
  const a = server.address();
  console.log(`listening on ${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
