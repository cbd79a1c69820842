// HAND-WRITTEN pool endpoint for the CryptoNote/XMRig "login" dialect (no real
// CryptoNote pool is published on npm). Reply shapes follow XMRig's parser
// (Client::parseLogin/parseJob/parseResponse) and the xmrig-proxy docs.
// Usage: node cryptonote-pool.js HOST PORT
'use strict';
const net = require('net');
const [host, port] = [process.argv[2] || '127.0.0.1', +(process.argv[3] || 3333)];
const blob = '1010a0e4d5a006' + 'c2'.repeat(32) + '00000000' + '7d'.repeat(32) + '05';
const job = (id, h) => ({ blob, job_id: id, target: 'b88d0600', algo: 'rx/0', height: h,
  seed_hash: 'a1f3'.repeat(16) });

net.createServer((s) => {
  s.setNoDelay(true);
  let buf = '';
  const send = (o) => s.write(JSON.stringify(o) + '\n');
  s.on('data', (d) => {
    buf += d.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i); buf = buf.slice(i + 1);
      let m; try { m = JSON.parse(line); } catch { continue; }
      if (m.method === 'login') {
        send({ id: m.id, jsonrpc: '2.0', error: null, result: { id: '8f2a6b1e-4d3c', job: job('J1', 3150001),
          extensions: ['algo', 'nicehash', 'connect', 'tls', 'keepalive'], status: 'OK' } });
        setTimeout(() => send({ jsonrpc: '2.0', method: 'job', params: job('J2', 3150002) }), 400);
      } else if (m.method === 'submit') {
        send({ id: m.id, jsonrpc: '2.0', error: null, result: { status: 'OK' } });
      } else if (m.method === 'keepalived') {
        send({ id: m.id, jsonrpc: '2.0', error: null, result: { status: 'KEEPALIVED' } });
      }
    }
  });
  s.on('error', () => {});
}).listen(port, host, () => console.log('cryptonote pool on', host, port));
