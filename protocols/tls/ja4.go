package tls

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
)

// fingerprint collects the non-GREASE lists JA4 hashes. The inline arrays
// cover every real client (Chrome sends ~16 ciphers and ~18 extensions), so
// the common case stays on the stack; append spills to the heap for the rest.
type fingerprint struct {
	cipherBuf, extBuf, sigalgBuf [48]uint16
	ciphers, exts, sigalgs       []uint16
	sni                          bool
}

const hexDigits = "0123456789abcdef"

// ja4 builds the fingerprint per FoxIO's technical_details/JA4.md:
// t{version}{d|i}{ciphers:02}{exts:02}{alpn}_{hash(sorted ciphers)}_{hash(sorted exts minus SNI/ALPN [_ sigalgs])}.
// With a Parser's interner, a hello whose inputs were fingerprinted before (the same client
// software: the usual case) gets the JA4 from a table instead of two SHA-256s and the sorts.
func (f *fingerprint) ja4(version uint16, alpnFirst []byte, in *interner) string {
	var out [36]byte
	if in == nil {
		return string(f.compute(&out, version, alpnFirst))
	}
	in.key = f.key(in.key[:0], version, alpnFirst)
	if s, ok := in.ja4[string(in.key)]; ok {
		return s
	}
	s := in.str(f.compute(&out, version, alpnFirst))
	if in.ja4 == nil || len(in.ja4) >= maxInterned {
		in.ja4 = make(map[string]string)
	}
	in.ja4[string(in.key)] = s
	return s
}

// key appends to k everything the JA4 of f is made of (version, SNI presence, the first ALPN
// value, the cipher, extension and signature algorithm lists as sent), each list after its
// length so that no two inputs share a key.
func (f *fingerprint) key(k []byte, version uint16, alpnFirst []byte) []byte {
	sni := byte(0)
	if f.sni {
		sni = 1
	}
	k = append(k, byte(version>>8), byte(version), sni, byte(len(alpnFirst)))
	k = append(k, alpnFirst...)
	for _, l := range [...][]uint16{f.ciphers, f.exts, f.sigalgs} {
		k = append(k, byte(len(l)>>8), byte(len(l)))
		for _, v := range l {
			k = append(k, byte(v>>8), byte(v))
		}
	}
	return k
}

// compute builds the JA4 of f in out; it sorts f's lists in place.
func (f *fingerprint) compute(out *[36]byte, version uint16, alpnFirst []byte) []byte {
	b := out[:0]
	b = append(b, 't')
	b = append(b, versionCode(version)...)
	if f.sni {
		b = append(b, 'd')
	} else {
		b = append(b, 'i')
	}
	b = appendCount(b, len(f.ciphers))
	b = appendCount(b, len(f.exts))
	b = appendALPN(b, alpnFirst)
	b = append(b, '_')

	slices.Sort(f.ciphers)
	b = appendHash(b, f.ciphers, nil, false)
	b = append(b, '_')

	// Drop SNI and ALPN: they are already in part a, and leaving them out
	// keeps part c equal for one client whether it dials a name or an IP.
	exts := f.exts[:0] // filter in place: the write index never passes the read index
	for _, e := range f.exts {
		if e != extServerName && e != extALPN {
			exts = append(exts, e)
		}
	}
	slices.Sort(exts)
	b = appendHash(b, exts, f.sigalgs, true)
	return b
}

func versionCode(v uint16) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

func appendCount(b []byte, n int) []byte {
	n = min(n, 99)
	return append(b, byte('0'+n/10), byte('0'+n%10))
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

// appendALPN writes the first and last characters of the first ALPN value;
// if either end byte is not ASCII alphanumeric, the first and last characters
// of the value's hex form (high nibble of the first byte, low nibble of the
// last) are used instead, so binary values stay printable.
func appendALPN(b []byte, v []byte) []byte {
	if len(v) == 0 {
		return append(b, '0', '0')
	}
	first, last := v[0], v[len(v)-1]
	if isAlnum(first) && isAlnum(last) {
		return append(b, first, last)
	}
	return append(b, hexDigits[first>>4], hexDigits[last&0x0f])
}

// appendHash appends the first 12 hex characters of sha256 over the
// comma-joined 4-hex-digit list, followed (when withSig and sig is non-empty)
// by "_" and the comma-joined sig list. An empty list hashes to twelve zeros.
func appendHash(b []byte, list, sig []uint16, withSig bool) []byte {
	if len(list) == 0 {
		return append(b, "000000000000"...)
	}
	var buf [512]byte
	s := buf[:0]
	s = appendHexList(s, list)
	if withSig && len(sig) > 0 {
		s = append(s, '_')
		s = appendHexList(s, sig)
	}
	sum := sha256.Sum256(s)
	var h [12]byte
	hex.Encode(h[:], sum[:6])
	return append(b, h[:]...)
}

func appendHexList(s []byte, list []uint16) []byte {
	for i, v := range list {
		if i > 0 {
			s = append(s, ',')
		}
		s = append(s, hexDigits[v>>12], hexDigits[v>>8&0xf], hexDigits[v>>4&0xf], hexDigits[v&0xf])
	}
	return s
}
