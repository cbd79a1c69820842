// Plays a HAND-WRITTEN line-protocol dialog (used where no real client/pool
// for a dialect is published in the reachable registries).
//   node linechat.js server HOST PORT DIALOG.json
//   node linechat.js client HOST PORT DIALOG.json [--bytewise] [--hold MS]
//   node linechat.js lines - - DIALOG.json   (client lines, paced, to stdout: for ncat/openssl)
// DIALOG: {"client": [[delayMs, "line"], ...],
//          "server": [["substring seen in a client line", ["reply", ...]], ...],
//          "push":   [[delayMsAfterFirstReply, "line"], ...]}
// Lines are sent verbatim + "\n" so odd spacing and \u escapes survive.
// --bytewise: TCP_NODELAY and one write per byte, 2 ms apart (one byte per segment).
'use strict';
const net = require('net');
const fs = require('fs');
const [mode, host, port, file] = process.argv.slice(2);
const d = JSON.parse(fs.readFileSync(file, 'utf8'));
const holdIdx = process.argv.indexOf('--hold');
const hold = holdIdx > 0 ? +process.argv[holdIdx + 1] : 800;

if (mode === 'server') {
  net.createServer((s) => {
    s.setNoDelay(true);
    let buf = '', pushed = false;
    s.on('data', (chunk) => {
      buf += chunk.toString('latin1');
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 1);
        const rule = (d.server || []).find(([sub]) => line.includes(sub));
        if (rule) for (const r of rule[1]) s.write(r + '\n');
        if (rule && !pushed) {
          pushed = true;
          for (const [t, l] of d.push || []) setTimeout(() => !s.destroyed && s.write(l + '\n'), t);
        }
      }
    });
    s.on('error', () => {});
  }).listen(+port, host, () => console.log('linechat server on', host, port));
} else if (mode === 'lines') {
  (async () => {
    for (const [t, l] of d.client) {
      await new Promise((r) => setTimeout(r, t));
      process.stdout.write(l + '\n');
    }
    await new Promise((r) => setTimeout(r, hold));
  })();
} else {
  const bytewise = process.argv.includes('--bytewise');
  const s = net.connect(+port, host, async () => {
    s.setNoDelay(true);
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    for (const [t, l] of d.client) {
      await sleep(t);
      const b = Buffer.from(l + '\n', 'latin1');
      if (bytewise) {
        for (let i = 0; i < b.length; i++) { s.write(b.subarray(i, i + 1)); await sleep(2); }
      } else s.write(b);
    }
    await sleep(hold);
    s.end();
  });
  s.on('data', () => {});
  s.on('error', (e) => { console.error('linechat client:', e.message); process.exit(1); });
  s.on('close', () => process.exit(0));
}
