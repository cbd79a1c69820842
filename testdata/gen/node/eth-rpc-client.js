// Benign: ordinary Ethereum JSON-RPC over HTTP with the real npm "ethers" 6.x
// client against a real "ganache" 7.x node (eth_blockNumber, eth_getBlockByNumber,
// eth_getBalance, eth_call, eth_sendTransaction path via a signer).
// Usage: node eth-rpc-client.js http://HOST:PORT
'use strict';
const { ethers } = require('ethers');
(async () => {
  const p = new ethers.JsonRpcProvider(process.argv[2], undefined, { staticNetwork: true, batchMaxCount: 1 });
  console.log('block', await p.getBlockNumber());
  const blk = await p.getBlock('latest');
  console.log('hash', blk.hash);
  const signer = await p.getSigner(0);
  const addr = await signer.getAddress();
  console.log('balance', ethers.formatEther(await p.getBalance(addr)));
  const tx = await signer.sendTransaction({ to: '0x000000000000000000000000000000000000dEaD', value: ethers.parseEther('0.01') });
  await tx.wait();
  // eth_call of balanceOf(address) on a non-contract: returns 0x.
  console.log('call', await p.call({ to: '0x000000000000000000000000000000000000dEaD', data: '0x70a08231' + addr.slice(2).padStart(64, '0') }));
  console.log('gas', (await p.getFeeData()).gasPrice);
  p.destroy();
})().catch((e) => { console.error(e.message); process.exit(1); });
