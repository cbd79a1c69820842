// Minimal HTTP JSON-RPC endpoint answering getwork / getblocktemplate /
// submitblock like bitcoind-era pools (HAND-WRITTEN server on node's http
// module; the client side in the capture is curl).
// Usage: node getwork-server.js HOST PORT [bitcoind]
// With "bitcoind" it answers like Bitcoin Core's RPC, which never sends the getwork-era
// X-Long-Polling header (used for the benign capture).
'use strict';
const http = require('http');
const [host, port, flavour] = [process.argv[2], +process.argv[3], process.argv[4]];
http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    let m = {}; try { m = JSON.parse(body); } catch {}
    let result = null;
    if (m.method === 'getwork' && !(m.params || []).length) {
      result = { midstate: '5f796c0c3bbc8a2a0c9f9b8c2b5e4fbb3a1b8fe36a1ef3f8b3b0c8d1ea5b4f2a',
        data: '00000001' + 'c4'.repeat(32) + '9d'.repeat(32) + '4e8f2a1b1a0c2b3d00000000' + '000000800000000000000000000000000000000000000000000000000000000000000000000000000000000080020000',
        hash1: '00000000000000000000000000000000000000000000000000000000000000000000008000000000000000000000000000000000000000000000000000010000',
        target: 'ffffffffffffffffffffffffffffffffffffffffffffffffffffffff00000000' };
    } else if (m.method === 'getwork') result = true;
    else if (m.method === 'getblocktemplate') {
      result = { version: 536870912, previousblockhash: '00000000000000000002a7c4c1e48d76c5a37902165a270156b7a8d72728a054',
        transactions: [], coinbaseaux: { flags: '' }, coinbasevalue: 625000000, longpollid: 'b61b385ce17b7f9e',
        target: '00000000000000000004fe420000000000000000000000000000000000000000', mintime: 1700000000,
        mutable: ['time', 'transactions', 'prevblock'], noncerange: '00000000ffffffff', sigoplimit: 80000,
        sizelimit: 4000000, curtime: 1700000600, bits: '17053894', height: 820000 };
    } else if (m.method === 'submitblock') result = null;
    res.setHeader('Content-Type', 'application/json');
    if (flavour !== 'bitcoind') res.setHeader('X-Long-Polling', '/LP');
    res.end(JSON.stringify({ result, error: null, id: m.id }) + '\n');
  });
}).listen(port, host, () => console.log('getwork server on', host, port));
