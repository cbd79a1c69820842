package dns

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	mdns "github.com/miekg/dns"
)

// ParseFast decodes the parts of a message the sensor uses (header, questions, and the A,
// AAAA and CNAME answers) without building miekg's resource-record objects: names go through
// miekg's own decompressor (UnpackDomainName, which bounds pointer chains), the fixed-size
// fields are read in place, and every other record is skipped by its length. It gives the
// same Message as Parse for every message both accept (FuzzParseFastMatchesParse holds it to
// that); replaying a mixed capture, Parse was the largest single cost after the flow table.
// Names are lower-cased without their trailing dot. Malformed input is an error wrapping
// ErrNotDNS.
func ParseFast(b []byte) (Message, error) {
	var w walker
	m, err := w.parse(b)
	if err == nil && w.hasEDNS {
		m.Rcode |= int(w.ednsTTL>>24) << 4
	}
	return m, err
}

// Parser is ParseFast with its buffers kept from one message to the next: the question and
// answer slices are reused, and a name that is only a compression pointer to a name already
// decoded in the same message (an answer owned by the question name, the usual case) reuses
// that name's string, so a typical lookup or answer costs one string, its question name.
// The zero value is ready; it is not safe for concurrent use.
type Parser struct {
	qs    []Question
	ans   []Answer
	m     Message
	addrs []AddrName
}

// maxKept bounds the slices a Parser keeps: a message with more records than this (rare and
// bounded by its size anyway) gets its own.
const maxKept = 64

// Parse is ParseFast. The returned Message, its slices and AddrNames' result are valid until
// the next Parse; the name strings stay valid.
func (p *Parser) Parse(b []byte) (*Message, error) {
	w := walker{qs: p.qs[:0], ans: p.ans[:0]}
	m, err := w.parse(b)
	if err == nil && w.hasEDNS {
		m.Rcode |= int(w.ednsTTL>>24) << 4
	}
	if c := cap(m.Questions); c > cap(p.qs) && c <= maxKept {
		p.qs = m.Questions[:0]
	}
	if c := cap(m.Answers); c > cap(p.ans) && c <= maxKept {
		p.ans = m.Answers[:0]
	}
	p.m = m
	return &p.m, err
}

// AddrNames is Message.AddrNames for the last parsed message, into a reused slice.
func (p *Parser) AddrNames() []AddrName {
	p.addrs = p.m.appendAddrNames(p.addrs[:0])
	return p.addrs
}

// walker keeps what ParseFast applies after the walk.
type walker struct {
	ednsTTL uint32
	hasEDNS bool
	qs      []Question // buffers to append to (Parser), or nil
	ans     []Answer
	names   [4]decoded // names decoded so far in this message, for pointers to them
	nnames  int
}

// decoded is a name decoded at b[off:end] that used no compression pointer itself, so a
// pointer to off decodes to the same name under the same limits.
type decoded struct {
	off, end int
	name     string
}

// name decodes the name at off like mdns.UnpackDomainName followed by normName.
func (w *walker) name(b []byte, off int) (string, int, error) {
	if off+1 < len(b) && b[off]&0xc0 == 0xc0 {
		ptr := int(b[off]&0x3f)<<8 | int(b[off+1])
		for _, d := range w.names[:w.nnames] {
			// end: a CNAME's data is decoded in a shorter b, which must hold the name.
			if d.off == ptr && d.end <= len(b) {
				return d.name, off + 2, nil
			}
		}
	}
	raw, next, err := mdns.UnpackDomainName(b, off)
	if err != nil {
		return "", next, err
	}
	name := normName(raw)
	if w.nnames < len(w.names) && pointerFree(b, off, next) {
		w.names[w.nnames] = decoded{off, next, name}
		w.nnames++
	}
	return name, next, nil
}

// pointerFree reports whether the name in b[off:next] (decoded without error) is plain
// labels ending in the root label.
func pointerFree(b []byte, off, next int) bool {
	i := off
	for i < next && b[i] != 0 {
		if b[i]&0xc0 != 0 {
			return false
		}
		i += 1 + int(b[i])
	}
	return i == next-1
}

func (w *walker) parse(b []byte) (Message, error) {
	if len(b) < 12 {
		return Message{}, fmt.Errorf("%w: %d-byte header", ErrNotDNS, len(b))
	}
	flags := binary.BigEndian.Uint16(b[2:4])
	qd, an := int(binary.BigEndian.Uint16(b[4:6])), int(binary.BigEndian.Uint16(b[6:8]))
	ns, ar := int(binary.BigEndian.Uint16(b[8:10])), int(binary.BigEndian.Uint16(b[10:12]))
	m := Message{ID: binary.BigEndian.Uint16(b[0:2]), Response: flags&0x8000 != 0, Rcode: int(flags & 0xf)}
	off := 12
	for i := 0; i < qd; i++ {
		if off == len(b) {
			return m, nil // counts larger than the data: a truncated message, as in miekg
		}
		name, next, err := w.name(b, off)
		if err != nil || next+1 == len(b) || next+3 == len(b) {
			return Message{}, fmt.Errorf("%w: question %d", ErrNotDNS, i)
		}
		if m.Questions == nil {
			m.Questions = w.qs
			if m.Questions == nil {
				m.Questions = make([]Question, 0, min(qd, 4))
			}
		}
		q := Question{Name: name}
		// Like miekg, a question cut off after its name or its type ends the message.
		if next+2 <= len(b) {
			q.Type = binary.BigEndian.Uint16(b[next:])
		}
		m.Questions = append(m.Questions, q)
		if next+4 > len(b) {
			return m, nil
		}
		off = next + 4
	}
	for sec, n := range [3]int{an, ns, ar} {
		for i := 0; i < n; i++ {
			if off == len(b) {
				// Counts larger than the data: read as the truncated message it is, as
				// miekg does, rather than trusting the count.
				return m, nil
			}
			name, next, err := w.name(b, off)
			if err != nil || next+10 > len(b) {
				return Message{}, fmt.Errorf("%w: record %d of section %d", ErrNotDNS, i, sec)
			}
			typ := binary.BigEndian.Uint16(b[next:])
			ttl := binary.BigEndian.Uint32(b[next+4:])
			rdlen := int(binary.BigEndian.Uint16(b[next+8:]))
			rd := next + 10
			if rd+rdlen > len(b) {
				return Message{}, fmt.Errorf("%w: record data past the end", ErrNotDNS)
			}
			off = rd + rdlen
			if typ == mdns.TypeOPT && !validOptions(b[rd:rd+rdlen]) {
				return Message{}, fmt.Errorf("%w: malformed EDNS options", ErrNotDNS)
			}
			if typ == mdns.TypeOPT && sec == 2 {
				// EDNS carries the upper bits of the extended RCODE in its TTL field; like
				// miekg, the last OPT record of the additional section counts.
				w.ednsTTL, w.hasEDNS = ttl, true
			}
			if sec != 0 {
				continue
			}
			a := Answer{Name: name, Type: typ, TTL: ttl}
			switch typ {
			case mdns.TypeA:
				if rdlen == 0 {
					break // no data (UPDATE-style): no address, as in miekg
				}
				if rdlen != 4 {
					return Message{}, fmt.Errorf("%w: A record of %d bytes", ErrNotDNS, rdlen)
				}
				a.Addr = netip.AddrFrom4([4]byte(b[rd : rd+4]))
			case mdns.TypeAAAA:
				if rdlen == 0 {
					break
				}
				if rdlen != 16 {
					return Message{}, fmt.Errorf("%w: AAAA record of %d bytes", ErrNotDNS, rdlen)
				}
				a.Addr = netip.AddrFrom16([16]byte(b[rd : rd+16]))
			case mdns.TypeCNAME:
				if rdlen == 0 {
					break // an UPDATE-style CNAME without data names nothing
				}
				target, end, err := w.name(b[:rd+rdlen], rd)
				if err != nil || end != rd+rdlen {
					return Message{}, fmt.Errorf("%w: CNAME data", ErrNotDNS)
				}
				a.Target = target
			}
			if m.Answers == nil {
				m.Answers = w.ans
				if m.Answers == nil {
					m.Answers = make([]Answer, 0, min(an, 16))
				}
			}
			m.Answers = append(m.Answers, a)
		}
	}
	return m, nil
}

// validOptions reports whether EDNS option data is a whole number of (code, length, value)
// options.
func validOptions(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 4 {
			return false
		}
		n := int(binary.BigEndian.Uint16(b[2:4]))
		if len(b) < 4+n {
			return false
		}
		b = b[4+n:]
	}
	return true
}
