// Package stratum recognises crypto-mining protocols in one direction of a
// TCP stream: Stratum v1, the CryptoNote/XMRig "login" dialect,
// EthereumStratum/1.0.0, eth-proxy, getwork and getblocktemplate (raw or
// over HTTP), CoinHive-style web-miner messages and Stratum V2 (plaintext
// SetupConnection, or the Noise first-flight length signature).
//
// A Scanner is fed the growing in-order prefix of a direction and answers
// Match, NotMining or NeedMore. JSON is decided on tokens by a small
// allocation-free walker rather than by byte patterns, so whitespace, key
// order, escapes, id types, duplicate and case-variant keys do not hide a
// message. The package keeps no global state and does no logging.
package stratum
