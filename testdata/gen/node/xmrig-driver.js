// HAND-WRITTEN driver that sends exactly the lines XMRig 6.21 sends (shapes
// copied from xmrig src/base/net/stratum/Client.cpp: login(), submit(), ping(),
// and the algo list Network::onLogin adds). XMRig itself is not in any registry
// reachable here. Keepalive is sent after 1.5 s instead of XMRig's 60 s so the
// capture stays short. Like XMRig: TCP_NODELAY, one write per message.
// Usage: node xmrig-driver.js HOST PORT [--lines] (--lines: print the lines to
// stdout instead of connecting, for piping into openssl s_client / ncat)
'use strict';
const net = require('net');
const [host, port] = [process.argv[2], +process.argv[3]];
const AGENT = 'XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0';
const WALLET = '44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A';
const ALGOS = ['rx/0', 'cn/1', 'cn/2', 'cn/r', 'cn/fast', 'cn/half', 'cn/xao', 'cn/rto', 'cn/rwz', 'cn/zls',
  'cn/double', 'cn/ccx', 'cn-lite/1', 'cn-heavy/0', 'cn-heavy/tube', 'cn-heavy/xhv', 'cn-pico', 'cn-pico/tlo',
  'cn/upx2', 'rx/wow', 'rx/arq', 'rx/graft', 'rx/sfx', 'rx/keva', 'argon2/chukwa', 'argon2/chukwav2',
  'argon2/ninja', 'rx/yada', 'ghostrider'];
const RPCID = '8f2a6b1e-4d3c';
// rapidjson Writer output: compact, key order as added.
const login = { id: 1, jsonrpc: '2.0', method: 'login',
  params: { login: WALLET, pass: 'x', agent: AGENT, rigid: 'rig-07', algo: ALGOS } };
const submit = (seq, job, nonce, result) => ({ id: seq, jsonrpc: '2.0', method: 'submit',
  params: { id: RPCID, job_id: job, nonce, result, algo: 'rx/0' } });
const lines = [
  [0, JSON.stringify(login)],
  [900, JSON.stringify(submit(2, 'J2', 'a3f10000', '5f2d0c0000000000' + 'e1'.repeat(24)))],
  [1300, JSON.stringify(submit(3, 'J2', '17c20100', '3b91000000000000' + '4c'.repeat(24)))],
  [1500, `{"id":4,"jsonrpc":"2.0","method":"keepalived","params":{"id":"${RPCID}"}}`],
];

if (process.argv.includes('--lines')) {
  // For openssl/ncat: emit on stdout with the same pacing.
  for (const [t, l] of lines) setTimeout(() => process.stdout.write(l + '\n'), t + 300);
  setTimeout(() => process.exit(0), 2600);
} else {
  const s = net.connect(port, host, () => {
    s.setNoDelay(true);
    for (const [t, l] of lines) setTimeout(() => s.write(l + '\n'), t);
    setTimeout(() => s.end(), 2200);
  });
  s.on('data', (d) => process.stdout.write('pool> ' + d.toString().slice(0, 100) + '\n'));
  s.on('error', (e) => { console.error('driver:', e.message); process.exit(1); });
  s.on('close', () => process.exit(0));
}
