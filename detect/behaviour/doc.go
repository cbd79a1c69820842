// Package behaviour scores encrypted and unknown TCP flows by the shape of their traffic, the
// part of a mining session that encryption does not hide: sizes, directions and timing of TLS
// records read from record headers (no decryption), per flow in a few dozen bytes.
package behaviour
