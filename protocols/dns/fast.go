package dns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	mdns "github.com/miekg/dns"
)

// ParseFast decodes the parts of a message the sensor uses (header, questions, and the A,
// AAAA and CNAME answers) without building miekg's resource-record objects: names are
// decompressed under miekg's bounds into the form miekg's UnpackDomainName and normName give
// (unpackName), the fixed-size fields are read in place, and every other record is skipped by
// its length. It gives the
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
// answer slices and the buffer names are decoded into are reused, a name that is only a
// compression pointer to a name already decoded in the same message (an answer owned by the
// question name, the usual case) reuses that name's string, and a name seen in an earlier
// message reuses its string from a bounded table (names), so a lookup or answer of a name
// asked before allocates nothing. The zero value is ready; it is not safe for concurrent use.
type Parser struct {
	qs     []Question
	ans    []Answer
	m      Message
	addrs  []AddrName
	chains []string // AddrNames' CNAME chains, reused
	buf    []byte
	names  map[string]string // interned names, at most maxInterned
}

// maxInterned bounds the names a Parser keeps for reuse (about 100 bytes each with the
// table): enough for the names a node's workloads keep asking for; when it fills, it starts
// over, so a stream of one-off names (a DNS flood, random subdomains) costs a string each,
// as without the table, and no more memory.
const maxInterned = 4096

// maxKept bounds the slices a Parser keeps: a message with more records than this (rare and
// bounded by its size anyway) gets its own.
const maxKept = 64

// Parse is ParseFast. The returned Message, its slices and AddrNames' result (its CNAME
// chains too) are valid until the next Parse; the name strings stay valid.
func (p *Parser) Parse(b []byte) (*Message, error) {
	if p.names == nil {
		p.names = make(map[string]string)
	}
	w := walker{qs: p.qs[:0], ans: p.ans[:0], buf: p.buf[:0], intern: p.names}
	m, err := w.parse(b)
	p.buf = w.buf
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
	p.chains = p.chains[:0]
	p.addrs = p.m.appendAddrNames(p.addrs[:0], &p.chains)
	if cap(p.chains) > maxKept*maxChain {
		p.chains = nil // a message of many long chains: not kept for the next one
	}
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
	buf     []byte            // unpackName's output, reused
	intern  map[string]string // Parser's names, or nil (ParseFast)
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
	var next int
	var err error
	w.buf, next, err = unpackName(w.buf[:0], b, off)
	if err != nil {
		return "", next, err
	}
	name := w.str(w.buf)
	if w.nnames < len(w.names) && pointerFree(b, off, next) {
		w.names[w.nnames] = decoded{off, next, name}
		w.nnames++
	}
	return name, next, nil
}

// str is the name in buf as a string: the interned one when the Parser has seen it (a map
// lookup by string(buf) does not allocate), else a new one, interned while there is room.
func (w *walker) str(buf []byte) string {
	if w.intern == nil {
		return string(buf)
	}
	if s, ok := w.intern[string(buf)]; ok {
		return s
	}
	s := string(buf)
	if len(w.intern) >= maxInterned {
		clear(w.intern)
	}
	w.intern[s] = s
	return s
}

// Bounds of a wire-format name, as miekg's unpacker has them.
const (
	maxNameWire     = 255                   // octets, RFC 1035 2.3.4
	maxNamePointers = (maxNameWire+1)/2 - 2 // compression pointers followed
)

// unpackName appends to dst the name at off in msg as mdns.UnpackDomainName followed by
// normName gives it (labels in presentation format, special bytes escaped as miekg escapes
// them, lower-cased, without the trailing dot; the root is empty), and returns the offset
// after the name where it is, not where a pointer led. It refuses what UnpackDomainName
// refuses: a name past the end, over 255 octets, with more than 126 pointers (so a loop
// ends), or with a reserved label type. FuzzUnpackNameMatchesMiekg holds it to miekg.
func unpackName(dst, msg []byte, off int) ([]byte, int, error) {
	start := len(dst)
	next := -1 // offset after the first pointer
	budget := maxNameWire
	ptrs := 0
	for {
		if off >= len(msg) {
			return dst, len(msg), errNameBuf
		}
		c := int(msg[off])
		off++
		switch c & 0xc0 {
		case 0x00:
			if c == 0 {
				if next < 0 {
					next = off
				}
				if len(dst) > start {
					dst = dst[:len(dst)-1] // the trailing dot
				}
				return dst, next, nil
			}
			if off+c > len(msg) {
				return dst, len(msg), errNameBuf
			}
			if budget -= c + 1; budget <= 0 {
				return dst, len(msg), errNameLong
			}
			for _, b := range msg[off : off+c] {
				switch {
				case 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-':
					dst = append(dst, b)
				case 'A' <= b && b <= 'Z':
					dst = append(dst, b+'a'-'A')
				case b < ' ' || b > '~':
					dst = append(dst, '\\', '0'+b/100, '0'+b/10%10, '0'+b%10)
				case b == '.' || b == ' ' || b == '\'' || b == '@' || b == ';' || b == '(' || b == ')' || b == '"' || b == '\\':
					dst = append(dst, '\\', b)
				default:
					dst = append(dst, b)
				}
			}
			dst = append(dst, '.')
			off += c
		case 0xc0:
			if off >= len(msg) {
				return dst, len(msg), errNameBuf
			}
			if next < 0 {
				next = off + 1
			}
			if ptrs++; ptrs > maxNamePointers {
				return dst, len(msg), errNamePointers
			}
			off = (c&0x3f)<<8 | int(msg[off])
		default:
			return dst, len(msg), errNameLabel // 0x40 and 0x80 are reserved
		}
	}
}

var (
	errNameBuf      = errors.New("name past the end of the message")
	errNameLong     = errors.New("name over 255 octets")
	errNamePointers = errors.New("too many compression pointers")
	errNameLabel    = errors.New("reserved label type")
)

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
