// Miner side using the npm "stratum" package's Client (pocesar/node-stratum 0.2.4):
// subscribe (with an agent string) -> authorize -> (pool sends notify) -> submit -> quit.
// The library's own event sequencing is unreliable, so steps are timer-driven.
// Usage: node stratum-lib-miner.js HOST PORT
'use strict';
const stratum = require('stratum');
const [host, port] = [process.argv[2], +process.argv[3]];
const client = stratum.Client.$create();
client.on('error', () => { console.error('miner: socket error'); process.exit(1); });
client.on('mining.error', (m) => console.error('miner: mining.error', m));
client.on('mining', () => {});
client.connect({ host, port }).then((socket) => {
  socket.stratumSubscribe('cgminer/4.10.0');
  setTimeout(() => socket.stratumAuthorize('lib.worker1', 'x'), 300);
  setTimeout(() => socket.stratumSubmit('lib.worker1', 'bf', '00000003', '51f1912a', 'a7c1e6f0'), 900);
  setTimeout(() => { console.log('miner: done'); client.destroy(); process.exit(0); }, 1600);
});
setTimeout(() => process.exit(0), 5000);
