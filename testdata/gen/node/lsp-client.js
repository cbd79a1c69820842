// Benign: a Language Server Protocol session (Content-Length framed JSON-RPC 2.0)
// against the real vscode-json-languageserver, reached over TCP via socat.
// The client half is hand-written (initialize, didOpen, completion, hover, shutdown).
// Usage: node lsp-client.js HOST PORT
'use strict';
const net = require('net');
const s = net.connect(+process.argv[3], process.argv[2]);
let id = 0;
const send = (method, params, notify) => {
  const m = { jsonrpc: '2.0', method, params };
  if (!notify) m.id = ++id;
  const body = Buffer.from(JSON.stringify(m));
  s.write(`Content-Length: ${body.length}\r\n\r\n`);
  s.write(body);
};
const uri = 'file:///home/dev/project/package.json';
const text = '{\n  "name": "demo",\n  "version": "1.0.0",\n  "scripts": {"test": "node test.js"}\n}\n';
s.on('connect', () => {
  send('initialize', { processId: 4242, rootUri: 'file:///home/dev/project', capabilities: { textDocument: { completion: { completionItem: { snippetSupport: true } }, hover: {} } } });
  setTimeout(() => send('initialized', {}, true), 300);
  setTimeout(() => send('textDocument/didOpen', { textDocument: { uri, languageId: 'json', version: 1, text } }, true), 400);
  setTimeout(() => send('textDocument/completion', { textDocument: { uri }, position: { line: 1, character: 3 } }), 700);
  setTimeout(() => send('textDocument/hover', { textDocument: { uri }, position: { line: 2, character: 5 } }), 1000);
  setTimeout(() => send('shutdown', null), 1400);
  setTimeout(() => { send('exit', null, true); s.end(); }, 1700);
});
s.on('data', () => {});
s.on('error', (e) => { console.error('lsp:', e.message); process.exit(1); });
s.on('close', () => process.exit(0));
