// Package dns owns DNS message decoding for the sensor (UDP payloads and
// length-prefixed TCP streams, via github.com/miekg/dns), mapping answered
// addresses back to the name the client queried through CNAME chains, and a
// bounded address→name cache with TTL expiry driven by the caller's clock.
package dns

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
)

// Question is one entry of the question section.
type Question struct {
	Name string // lower-case, no trailing dot
	Type uint16
}

// Answer is one resource record of the answer section. Addr is set for A and
// AAAA records, Target for CNAME records.
type Answer struct {
	Name   string // owner name, lower-case, no trailing dot
	Type   uint16
	TTL    uint32
	Addr   netip.Addr
	Target string // CNAME target, lower-case, no trailing dot
}

// Message is the part of a DNS message the sensor uses.
type Message struct {
	ID        uint16
	Response  bool
	Rcode     int // includes the EDNS extended RCODE bits
	Questions []Question
	Answers   []Answer
}

// ErrNotDNS wraps every Parse failure so callers can count decode errors
// without matching miekg's error values.
var ErrNotDNS = errors.New("not a dns message")

// Parse decodes one DNS message: a UDP payload, or one TCP-framed message
// without its 2-byte length prefix. Compression loops, pointers past the end
// and names over 255 octets are rejected by miekg/dns's unpacker.
func Parse(b []byte) (Message, error) {
	var m mdns.Msg
	if err := m.Unpack(b); err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrNotDNS, err)
	}
	out := Message{
		ID:       m.Id,
		Response: m.Response,
		Rcode:    m.Rcode,
	}
	if len(m.Question) > 0 {
		out.Questions = make([]Question, len(m.Question))
		for i, q := range m.Question {
			out.Questions[i] = Question{Name: normName(q.Name), Type: q.Qtype}
		}
	}
	if len(m.Answer) > 0 {
		out.Answers = make([]Answer, 0, len(m.Answer))
		for _, rr := range m.Answer {
			h := rr.Header()
			a := Answer{Name: normName(h.Name), Type: h.Rrtype, TTL: h.Ttl}
			switch r := rr.(type) {
			case *mdns.A:
				a.Addr, _ = netip.AddrFromSlice(r.A.To4())
			case *mdns.AAAA:
				a.Addr, _ = netip.AddrFromSlice(r.AAAA.To16())
			case *mdns.CNAME:
				a.Target = normName(r.Target)
			}
			out.Answers = append(out.Answers, a)
		}
	}
	return out, nil
}

// normName lower-cases a presentation-format name and drops the trailing
// dot, so names compare equal however the server cased them (0x20 encoding
// randomises case on purpose).
func normName(s string) string {
	s = strings.TrimSuffix(s, ".")
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// SplitTCP walks a DNS-over-TCP stream prefix (messages each preceded by a
// 2-byte big-endian length) starting at offset from, calls fn for each
// complete message, and returns the offset just after the last complete
// message: pass it back as from once more bytes have arrived. A zero length
// prefix is skipped. fn receives a sub-slice of stream; copy it to keep it.
func SplitTCP(stream []byte, from int, fn func(msg []byte)) (next int) {
	if from < 0 {
		from = 0
	}
	for from+2 <= len(stream) {
		n := int(stream[from])<<8 | int(stream[from+1])
		end := from + 2 + n
		if end > len(stream) {
			break
		}
		if n > 0 {
			fn(stream[from+2 : end])
		}
		from = end
	}
	return from
}
