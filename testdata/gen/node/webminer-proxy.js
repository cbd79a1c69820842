// WebSocket -> Stratum relay using the real npm "coin-hive-stratum" 1.4.10
// proxy, with its built-in donation pools disabled (no outside traffic).
// Usage: node webminer-proxy.js LISTEN_HOST LISTEN_PORT POOL_HOST POOL_PORT
'use strict';
const createProxy = require('coin-hive-stratum');
const [lh, lp, ph, pp] = process.argv.slice(2);
createProxy({ host: ph, port: +pp, pass: 'x', donations: [], log: true })
  .listen({ host: lh, port: +lp });
