package tls

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// ext is one extension for buildHello.
type ext struct {
	typ  uint16
	data []byte
}

// buildHello returns a ClientHello handshake message (header included, no
// record layer).
func buildHello(legacy uint16, ciphers []uint16, exts []ext) []byte {
	var body []byte
	body = binary.BigEndian.AppendUint16(body, legacy)
	body = append(body, make([]byte, 32)...) // random
	body = append(body, 0)                   // session id
	body = binary.BigEndian.AppendUint16(body, uint16(2*len(ciphers)))
	for _, c := range ciphers {
		body = binary.BigEndian.AppendUint16(body, c)
	}
	body = append(body, 1, 0) // null compression
	if exts != nil {
		var eb []byte
		for _, e := range exts {
			eb = binary.BigEndian.AppendUint16(eb, e.typ)
			eb = binary.BigEndian.AppendUint16(eb, uint16(len(e.data)))
			eb = append(eb, e.data...)
		}
		body = binary.BigEndian.AppendUint16(body, uint16(len(eb)))
		body = append(body, eb...)
	}
	msg := []byte{typeClientHello, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}
	return append(msg, body...)
}

// records frames a handshake message into TLS records of at most frag bytes.
func records(msg []byte, frag int) []byte {
	var out []byte
	for len(msg) > 0 {
		n := min(frag, len(msg))
		out = append(out, contentHandshake, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

func sniExt(name string) ext {
	var d []byte
	d = binary.BigEndian.AppendUint16(d, uint16(len(name)+3))
	d = append(d, 0)
	d = binary.BigEndian.AppendUint16(d, uint16(len(name)))
	return ext{extServerName, append(d, name...)}
}

func alpnExt(protos ...string) ext {
	var l []byte
	for _, p := range protos {
		l = append(l, byte(len(p)))
		l = append(l, p...)
	}
	d := binary.BigEndian.AppendUint16(nil, uint16(len(l)))
	return ext{extALPN, append(d, l...)}
}

func u16ListExt(typ uint16, vals ...uint16) ext {
	d := binary.BigEndian.AppendUint16(nil, uint16(2*len(vals)))
	for _, v := range vals {
		d = binary.BigEndian.AppendUint16(d, v)
	}
	return ext{typ, d}
}

func versionsExt(vals ...uint16) ext {
	d := []byte{byte(2 * len(vals))}
	for _, v := range vals {
		d = binary.BigEndian.AppendUint16(d, v)
	}
	return ext{extSupportedVersio, d}
}

// refJA4 is an independent, deliberately naive JA4 (string joins and
// fmt) used as an oracle against facts crypto/tls's server extracted from the
// same hello. GREASE values are dropped here too.
func refJA4(legacy uint16, versions, ciphers, exts, sigalgs []uint16, sni bool, alpn []string) string {
	grease := func(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }
	clean := func(in []uint16) []string {
		var out []string
		for _, v := range in {
			if !grease(v) {
				out = append(out, fmt.Sprintf("%04x", v))
			}
		}
		return out
	}
	ver := legacy
	var vs []uint16
	for _, v := range versions {
		if !grease(v) {
			vs = append(vs, v)
		}
	}
	if len(vs) > 0 {
		ver = slices.Max(vs)
	}
	vcode := map[uint16]string{0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3"}[ver]
	if vcode == "" {
		vcode = "00"
	}
	d := "i"
	if sni {
		d = "d"
	}
	a := "00"
	if len(alpn) > 0 && alpn[0] != "" {
		a = alpn[0][:1] + alpn[0][len(alpn[0])-1:]
	}
	cs, es := clean(ciphers), clean(exts)
	hash := func(s string) string {
		if s == "" {
			return "000000000000"
		}
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])[:12]
	}
	sortedCS := slices.Sorted(slices.Values(cs))
	var filtered []string
	for _, e := range es {
		if e != "0000" && e != "0010" {
			filtered = append(filtered, e)
		}
	}
	slices.Sort(filtered)
	c := strings.Join(filtered, ",")
	if sa := clean(sigalgs); len(sa) > 0 && c != "" {
		c += "_" + strings.Join(sa, ",")
	}
	return fmt.Sprintf("t%s%s%02d%02d%s_%s_%s", vcode, d, min(len(cs), 99), min(len(es), 99), a,
		hash(strings.Join(sortedCS, ",")), hash(c))
}
