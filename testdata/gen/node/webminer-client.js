// HAND-WRITTEN CoinHive-style browser miner client: the messages coinhive.min.js
// sent (auth / submit), over the real npm "ws" 8.x WebSocket client, whose
// frames are masked as RFC 6455 requires.
// Usage: node webminer-client.js ws://HOST:PORT/
'use strict';
const WebSocket = require('ws');
const ws = new WebSocket(process.argv[2], { headers: { 'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36', Origin: 'http://blog.example.org' } });
let submitted = 0;
ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', params: {
  site_key: '44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A',
  type: 'anonymous', user: null, goal: 0 } })));
ws.on('message', (m) => {
  const d = JSON.parse(m);
  console.log('relay>', d.type);
  if (d.type === 'job' && submitted < 2) {
    submitted++;
    setTimeout(() => ws.send(JSON.stringify({ type: 'submit', params: {
      job_id: d.params.job_id, nonce: submitted === 1 ? 'a3f10000' : '17c20100',
      result: (submitted === 1 ? '5f2d0c0000000000' : '3b91000000000000') + 'e1'.repeat(24) } })), 300);
  }
});
ws.on('error', (e) => { console.error('webminer:', e.message); process.exit(1); });
setTimeout(() => { ws.close(); setTimeout(() => process.exit(0), 300); }, 2500);
