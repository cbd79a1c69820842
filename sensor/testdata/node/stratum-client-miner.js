// Miner side using the npm "stratum-client" package (arnabk/stratum-client 1.1.0):
// subscribe -> authorize -> receives notify -> submits two shares -> quits.
// Usage: node stratum-client-miner.js HOST PORT
'use strict';
const client = require('stratum-client');
const [server, port] = [process.argv[2], +process.argv[3]];
let sent = 0;
const c = client({
  server, port,
  worker: '1BoatSLRHtKNngkdXEeobR76b53LETtpyT.rig01',
  password: 'x',
  autoReconnectOnError: false,
  onAuthorizeSuccess: () => console.log('miner: authorized'),
  onNewMiningWork: (w) => {
    if (sent++ > 0) return;
    const worker = '1BoatSLRHtKNngkdXEeobR76b53LETtpyT.rig01';
    setTimeout(() => c.submit({ worker_name: worker, job_id: w.jobId, extranonce2: '00000001', ntime: w.ntime, nonce: 'b2957c02' }), 300);
    setTimeout(() => c.submit({ worker_name: worker, job_id: w.jobId, extranonce2: '00000002', ntime: w.ntime, nonce: '0d2b6b3f' }), 700);
    setTimeout(() => c.shutdown(), 1500);
  },
  onSubmitWorkSuccess: () => console.log('miner: share accepted'),
  onSubmitWorkFail: (e) => console.log('miner: share rejected', e),
  onError: (e) => { console.error('miner error', e.message); process.exit(1); },
});
setTimeout(() => process.exit(0), 5000);
