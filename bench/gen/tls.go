package main

import "encoding/binary"

// recStream is an endless run of TLS application-data records of one size,
// stored as one period plus enough slack that any take fits in one slice:
// payloads cut from it at a running offset keep the record framing valid
// across TCP messages without allocating.
type recStream struct {
	buf    []byte
	period int
}

func newRecStream(g *generator, payload, maxTake int) *recStream {
	rec := make([]byte, 5+payload)
	rec[0], rec[1], rec[2] = 0x17, 0x03, 0x03
	binary.BigEndian.PutUint16(rec[3:], uint16(payload))
	copy(rec[5:], g.noiseN(payload))
	s := &recStream{period: len(rec)}
	for len(s.buf) < s.period+maxTake {
		s.buf = append(s.buf, rec...)
	}
	return s
}

// take returns the next n bytes of the stream after *off and advances it.
func (s *recStream) take(off *int, n int) []byte {
	b := s.buf[*off : *off+n]
	*off = (*off + n) % s.period
	return b
}

// clientHello builds a TLS 1.3 ClientHello record; an empty sni leaves the
// server_name extension out (XMRig's default), alpn adds h2/http1.1.
func clientHello(g *generator, sni string, alpn bool) []byte {
	var ext []byte
	if sni != "" {
		ext = binary.BigEndian.AppendUint16(ext, 0)
		ext = binary.BigEndian.AppendUint16(ext, uint16(len(sni)+5))
		ext = binary.BigEndian.AppendUint16(ext, uint16(len(sni)+3))
		ext = append(ext, 0)
		ext = binary.BigEndian.AppendUint16(ext, uint16(len(sni)))
		ext = append(ext, sni...)
	}
	ext = append(ext, 0, 10, 0, 8, 0, 6, 0, 0x1d, 0, 0x17, 0, 0x18) // supported_groups
	ext = append(ext, 0, 11, 0, 2, 1, 0)                            // ec_point_formats
	ext = append(ext, 0, 13, 0, 14, 0, 12, 4, 3, 8, 4, 4, 1, 5, 3, 8, 5, 5, 1)
	if alpn {
		ext = append(ext, 0, 16, 0, 14, 0, 12, 2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1')
	}
	ext = append(ext, 0, 43, 0, 5, 4, 3, 4, 3, 3) // supported_versions 1.3, 1.2
	ext = append(ext, 0, 51, 0, 38, 0, 36, 0, 0x1d, 0, 32)
	ext = append(ext, g.noiseN(32)...) // x25519 key share

	var h []byte
	h = append(h, 3, 3)
	h = append(h, g.noiseN(32)...) // random
	h = append(h, 32)
	h = append(h, g.noiseN(32)...) // legacy session id
	suites := []byte{0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x2c, 0xc0, 0x30, 0xcc, 0xa9, 0xcc, 0xa8}
	h = binary.BigEndian.AppendUint16(h, uint16(len(suites)))
	h = append(h, suites...)
	h = append(h, 1, 0)
	h = binary.BigEndian.AppendUint16(h, uint16(len(ext)))
	h = append(h, ext...)
	return handshakeRecord(1, h, 0x0301)
}

// serverHello is a TLS 1.3 ServerHello, ChangeCipherSpec and the encrypted
// rest of the server's first flight (certificate etc.) as opaque records.
func serverHello(g *generator) []byte {
	var h []byte
	h = append(h, 3, 3)
	h = append(h, g.noiseN(32)...)
	h = append(h, 32)
	h = append(h, g.noiseN(32)...)
	h = append(h, 0x13, 0x01, 0)
	ext := []byte{0, 43, 0, 2, 3, 4, 0, 51, 0, 36, 0, 0x1d, 0, 32}
	ext = append(ext, g.noiseN(32)...)
	h = binary.BigEndian.AppendUint16(h, uint16(len(ext)))
	h = append(h, ext...)
	b := handshakeRecord(2, h, 0x0303)
	b = append(b, 0x14, 3, 3, 0, 1, 1)
	n := 1800 + g.rng.IntN(2500)
	b = append(b, 0x17, 3, 3, byte(n>>8), byte(n))
	return append(b, g.noiseN(n)...)
}

func handshakeRecord(typ byte, body []byte, recVersion uint16) []byte {
	b := make([]byte, 0, 9+len(body))
	b = append(b, 0x16)
	b = binary.BigEndian.AppendUint16(b, recVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)+4))
	b = append(b, typ, byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
	return append(b, body...)
}
