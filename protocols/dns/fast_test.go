package dns

import (
	"reflect"
	"testing"

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
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ferr := ParseFast(b)
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

func BenchmarkParseFast(b *testing.B) {
	msg := answerMsg(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ParseFast(msg)
	}
}
