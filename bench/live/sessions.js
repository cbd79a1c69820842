// N Stratum v1 sessions from ONE process, made with the npm "stratum" package's Client
// (pocesar/node-stratum 0.2.4, installed by `npm ci --prefix sensor/testdata/node`), against
// testdata/gen/node/stratum-pool.js. Sessions start spread over SPREAD_MS; each subscribes,
// authorizes, then submits a share every second until END_MS, when the process prints one
// JSON line: [{session, port (local, to match alerts), connected, replies, submits, error}].
// XMRig keeps one pool connection per process, so it cannot play "20 sessions, one process".
// Usage: node sessions.js HOST PORT N SPREAD_MS END_MS
'use strict';
const stratum = require('stratum');
const [host, port, n, spread, end] = [process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5], +process.argv[6]];
const results = [];
const clients = [];

function start(r) {
  const c = stratum.Client.$create();
  clients.push(c);
  c.on('error', () => { r.error = 'socket error'; });
  c.on('mining.error', (m) => { r.error = 'mining.error ' + JSON.stringify(m).slice(0, 80); });
  c.on('mining', () => {});
  c.socket.on('data', () => { r.replies++; });
  c.connect({ host, port }).then(() => {
    r.connected = true;
    r.port = c.socket.localPort;
    const worker = 'bench.w' + r.session;
    c.stratumSubscribe('cgminer/4.10.0').catch(() => {});
    setTimeout(() => c.stratumAuthorize(worker, 'x').catch(() => {}), 200);
    let nonce = r.session << 16;
    const iv = setInterval(() => {
      nonce++;
      c.stratumSubmit(worker, 'bf', '00000003', '51f1912a', nonce.toString(16).padStart(8, '0')).catch(() => {});
      r.submits++;
    }, 1000);
    clients.push({ destroy: () => clearInterval(iv) });
  }).catch(() => { r.error = 'connect failed'; });
}

for (let i = 0; i < n; i++) {
  const r = { session: i, port: 0, connected: false, replies: 0, submits: 0, error: '' };
  results.push(r);
  setTimeout(() => start(r), Math.floor(i * spread / Math.max(n, 1)));
}
setTimeout(() => {
  console.log(JSON.stringify(results));
  for (const c of clients) { try { c.destroy(); } catch (e) { /* closing anyway */ } }
  process.exit(0);
}, end);
