// Stratum v1 pool endpoint built on the npm "stratum" package's Server
// (pocesar/node-stratum 0.2.4). Usage: node stratum-pool.js HOST PORT
'use strict';
const stratum = require('stratum');
const [host, port] = [process.argv[2] || '127.0.0.1', +(process.argv[3] || 3333)];
const server = stratum.Server.$create({ settings: { host, port, hostname: host, toobusy: 1000 } });

server.on('mining', (req, deferred, socket) => {
  switch (req.method) {
    case 'subscribe':
      deferred.resolve(['b4b6693b72a50c7116db18d6497cac52', 'ae6812eb4cd7735a302a8a9dd95cf71f', '08000002', 4]);
      break;
    case 'authorize':
      deferred.resolve([true]);
      deferred.promise.then(() => {
        socket.set_difficulty([16]).then(() =>
          socket.notify([
            'bf', 'b61b385ce17b7f9e4d1586ee0cfa7bc0778fe63bffe0240bd9d228f2829b7f0b',
            '01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff2303700706062f503253482f042a91f15108',
            '092f7374726174756d2f00000000018091db2a010000001976a914e63c288f379eea1a32305932d957d70b69e21dff88ac00000000',
            ['4d31368c61b556105d936a0bf2f7d772e19375d2997fbf8d9eae5c5e089b2910'],
            '00000001', '1b494a04', '51f1912a', true]));
      });
      break;
    case 'submit':
      deferred.resolve([true]);
      break;
    default:
      deferred.reject(stratum.Server.errors.METHOD_NOT_FOUND);
  }
});
server.on('mining.error', (e) => console.error('pool: mining.error', e));
server.listen().done((m) => console.log('pool:', m));
