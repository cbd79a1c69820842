// Package tls owns passive parsing of the client side of a TLS connection:
// reassembling a ClientHello from the record layer (it may span several
// records and several TCP segments), extracting SNI, ALPN and the negotiable
// version, and computing the FoxIO JA4 fingerprint. It never terminates or
// decrypts TLS; it only reads the cleartext handshake prefix of a stream.
package tls
