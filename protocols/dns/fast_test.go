package dns

import (
	"fmt"
	"reflect"
	"testing"
	"unsafe"

	mdns "github.com/miekg/dns"
)

func answerMsg(t testing.TB) []byte {
	q := new(mdns.Msg).SetQuestion("Pool.SupportXMR.com.", mdns.TypeA)
	m := new(mdns.Msg).SetReply(q)
	for _, s := range []string{
		"pool.supportxmr.com. 60 IN CNAME edge.cdn.example.",
		"edge.cdn.example. 30 IN A 10.9.9.9",
		"edge.cdn.example. 30 IN AAAA 2001:db8::9",
		"edge.cdn.example. 30 IN TXT \"x\"",
	} {
		rr, err := mdns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	m.SetEdns0(1232, false)
	m.Compress = true
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFastMatchesParse(t *testing.T) {
	b := answerMsg(t)
	want, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseFast(b)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseFast = %+v, %v\nParse     = %+v", got, err, want)
	}
	if an := got.AddrNames(); len(an) != 2 || an[0].Name != "pool.supportxmr.com" {
		t.Fatalf("AddrNames = %+v", an)
	}
}

// FuzzParseFastMatchesParse holds the fast path to the full miekg decode: whenever Parse
// accepts a message, ParseFast gives the same Message.
func FuzzParseFastMatchesParse(f *testing.F) {
	f.Add(answerMsg(f))
	f.Add(handCompressed)
	f.Add(hdr(1, 0x8180, 0, 0xffff, 0, 0))
	f.Add(cat(hdr(1, 0x0100, 0, 0, 0, 1), mustHex("00 0029 1000 00008000 0008 0003 0010 4f70656e")))
	var p Parser // reused across inputs, as the engine reuses it across messages
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ferr := ParseFast(b)
		pm, perr := p.Parse(b)
		if (perr != nil) != (ferr != nil) || ferr == nil && (!reflect.DeepEqual(*pm, got) || !sameAddrNames(p.AddrNames(), got.AddrNames())) {
			t.Fatalf("Parser.Parse = %+v, %v\nParseFast    = %+v, %v", *pm, perr, got, ferr)
		}
		want, err := Parse(b)
		if err != nil {
			return
		}
		if ferr != nil {
			t.Fatalf("Parse accepted what ParseFast refused (%v): %+v", ferr, want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseFast = %+v\nParse     = %+v", got, want)
		}
	})
}

func BenchmarkParseFull(b *testing.B) {
	msg := answerMsg(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Parse(msg)
	}
}

// TestParserReuse parses a query, an answer and a query again with one Parser: each result
// matches ParseFast, and in steady state an answer costs only the strings of names that are
// not pointers to earlier names.
func TestParserReuse(t *testing.T) {
	var p Parser
	ans := answerMsg(t)
	query := new(mdns.Msg).SetQuestion("pool.example.", mdns.TypeAAAA)
	qb, _ := query.Pack()
	for _, b := range [][]byte{qb, ans, qb, ans} {
		want, _ := ParseFast(b)
		got, err := p.Parse(b)
		if err != nil || !reflect.DeepEqual(*got, want) || !sameAddrNames(p.AddrNames(), want.AddrNames()) {
			t.Fatalf("Parse = %+v, %v; want %+v", *got, err, want)
		}
	}
	if got := p.m.Answers[1].Name; got != "edge.cdn.example" {
		t.Fatalf("owner name through a pointer: %q", got)
	}
	fast := testing.AllocsPerRun(200, func() { m, _ := ParseFast(ans); m.AddrNames() })
	reused := testing.AllocsPerRun(200, func() { p.Parse(ans); p.AddrNames() })
	// The names no pointer leads to (the question, then lower-cased; the CNAME target; the
	// EDNS root) and AddrNames' CNAME chain; the owners of the CNAME, A, AAAA and TXT records
	// are pointers to earlier names and reuse their strings.
	if reused > 5 || reused >= fast {
		t.Fatalf("%.0f allocations per answer with a Parser, %.0f with ParseFast", reused, fast)
	}
}

// sameAddrNames compares two results, an empty one equal to nil (a Parser returns its
// reused slice empty).
func sameAddrNames(a, b []AddrName) bool {
	return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b)
}

func BenchmarkParser(b *testing.B) {
	msg := answerMsg(b)
	var p Parser
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p.Parse(msg)
		p.AddrNames()
	}
}

func BenchmarkParseFast(b *testing.B) {
	msg := answerMsg(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ParseFast(msg)
	}
}

// FuzzUnpackNameMatchesMiekg holds unpackName to what it replaces, miekg's UnpackDomainName
// followed by normName: the same name, the same next offset, and an error for the same
// inputs, at every offset of the message.
func FuzzUnpackNameMatchesMiekg(f *testing.F) {
	f.Add(answerMsg(f))
	f.Add(handCompressed)
	f.Add([]byte("\x03a.B\x02\x00\xff\x04Mx\\y\x00"))
	f.Add([]byte("\xc0\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var buf []byte
		for off := 0; off < len(b) && off < 64; off++ {
			raw, wantNext, werr := mdns.UnpackDomainName(b, off)
			var next int
			var err error
			buf, next, err = unpackName(buf[:0], b, off)
			if (err != nil) != (werr != nil) {
				t.Fatalf("offset %d: unpackName error %v, miekg %v", off, err, werr)
			}
			if err == nil && (string(buf) != normName(raw) || next != wantNext) {
				t.Fatalf("offset %d: unpackName %q next %d, miekg %q next %d", off, buf, next, normName(raw), wantNext)
			}
		}
	})
}

// TestParserInterns: a name asked again in a later message reuses its string, and the CNAME
// chains go into a reused buffer, so a repeated query or answer allocates nothing; the table
// stays within maxInterned names.
func TestParserInterns(t *testing.T) {
	var p Parser
	ans := answerMsg(t)
	if _, err := p.Parse(ans); err != nil {
		t.Fatal(err)
	}
	first := p.m.Questions[0].Name
	if n := testing.AllocsPerRun(100, func() { p.Parse(ans); p.AddrNames() }); n != 0 {
		t.Fatalf("%.0f allocations per repeated answer", n)
	}
	if an := p.AddrNames(); len(an) != 2 || len(an[0].CNAMEs) != 1 || an[0].CNAMEs[0] != "edge.cdn.example" {
		t.Fatalf("AddrNames = %+v", an)
	}
	if p.m.Questions[0].Name != first || unsafe.StringData(p.m.Questions[0].Name) != unsafe.StringData(first) {
		t.Fatalf("question name not reused: %q", p.m.Questions[0].Name)
	}
	for i := range 2*maxInterned + 10 {
		q := new(mdns.Msg).SetQuestion(fmt.Sprintf("n%d.example.", i), mdns.TypeA)
		b, _ := q.Pack()
		m, err := p.Parse(b)
		if err != nil || m.Questions[0].Name != fmt.Sprintf("n%d.example", i) {
			t.Fatalf("query %d: %+v, %v", i, m, err)
		}
		if len(p.names) > maxInterned {
			t.Fatalf("%d interned names, bound %d", len(p.names), maxInterned)
		}
	}
}
