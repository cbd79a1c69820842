// Package proxy recognises the preambles that wrap a tunnelled stream —
// SOCKS5, SOCKS4/4a, HTTP CONNECT and the WebSocket upgrade — so detection
// can continue on the bytes inside the tunnel, and decodes WebSocket frames
// (unmasking client frames) into newline-separated message payloads.
//
// Everything here is a pure function of the bytes given: no logging, no
// global state, and malformed input yields NotProxy or an error, never a
// panic.
package proxy
