package intel

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuiltin(t *testing.T) {
	s := Builtin()
	d, a, _, p := s.Counts()
	if d < 400 || a < 500 || p < 20 {
		t.Fatalf("built-in list too small: %d domains, %d addrs, %d ports", d, a, p)
	}
	for _, tc := range []struct {
		name string
		kind Kind
		ok   bool
	}{
		{"pool.supportxmr.com", KindPool, true},
		{"xmr.2miners.com", KindPool, true},
		{"eu.xmr.2miners.com.", KindPool, true},
		{"XMR.2MINERS.COM", KindPool, false}, // callers lower-case first; no hidden allocation here
		{"cloudflare-dns.com", KindDoH, true},
		{"example.com", 0, false},
		{"com", 0, false},
		{"supportxmr.com.evil.example", 0, false},
		// Shared platforms are never listed whole (a NoCoin pattern names a path on S3).
		{"sts.amazonaws.com", 0, false},
		{"s3.eu-west-1.amazonaws.com", 0, false},
		{"user.github.io", 0, false},
	} {
		e, ok := s.Domain(tc.name)
		if ok != tc.ok || (ok && e.Kind != tc.kind) {
			t.Errorf("Domain(%q) = %+v, %v; want kind %v, %v", tc.name, e, ok, tc.kind, tc.ok)
		}
	}
	if e, ok := s.Addr(netip.MustParseAddr("1.1.1.1"), 443); !ok || e.Kind != KindDoH {
		t.Errorf("1.1.1.1 not a DoH resolver: %+v %v", e, ok)
	}
	if !s.MinerPort(3333) || s.MinerPort(22) {
		t.Error("miner ports wrong")
	}
}

func TestUserLists(t *testing.T) {
	dir := t.TempDir()
	txt := filepath.Join(dir, "pools.txt")
	os.WriteFile(txt, []byte("# mine\nmypool.example\n203.0.113.0/24\n198.51.100.7:4444\nresolver.example doh\n"), 0o644)
	yml := filepath.Join(dir, "more.yaml")
	os.WriteFile(yml, []byte("pools: [other.example]\naddrs: ['2001:db8:5::/48']\nports: [12345]\n"), 0o644)
	s, err := Builtin().With(txt, yml)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		addr string
		port uint16
		ok   bool
	}{
		{"203.0.113.9", 1, true}, {"203.0.114.9", 1, false}, {"198.51.100.7", 4444, true},
		{"198.51.100.7", 4445, false}, {"2001:db8:5::1", 80, true}, {"::ffff:203.0.113.1", 1, true},
	}
	for _, c := range checks {
		if _, ok := s.Addr(netip.MustParseAddr(c.addr), c.port); ok != c.ok {
			t.Errorf("Addr(%s, %d) = %v, want %v", c.addr, c.port, ok, c.ok)
		}
	}
	if e, ok := s.Domain("a.mypool.example"); !ok || !strings.HasPrefix(e.Source, "user:") {
		t.Errorf("user domain: %+v %v", e, ok)
	}
	if e, _ := s.Domain("resolver.example"); e.Kind != KindDoH {
		t.Errorf("doh marker ignored: %+v", e)
	}
	if _, ok := s.Domain("other.example"); !ok || !s.MinerPort(12345) {
		t.Error("yaml list not applied")
	}
	// The original set is unchanged: sets are immutable.
	if _, ok := Builtin().Domain("mypool.example"); ok {
		t.Error("With changed the receiver")
	}
}

func TestBadUserLists(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"bad.txt":  "ok.example\nnot a domain!\n",
		"long.txt": strings.Repeat("a", MaxLineLen+10) + "\n",
		"bad.yaml": "pools: [ok.example]\nunknown_key: 1\n",
		"type.yml": "ports: [x]\n",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := Builtin().With(p); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, err := Builtin().With(filepath.Join(dir, "missing.txt")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestDomainNoAlloc(t *testing.T) {
	s := Builtin()
	n := testing.AllocsPerRun(100, func() {
		s.Domain("a.b.c.pool.supportxmr.com")
		s.Addr(netip.MustParseAddr("10.1.2.3"), 443)
	})
	if n != 0 {
		t.Fatalf("allocs = %v", n)
	}
}

// FuzzUserList feeds hostile list files to the text and YAML loaders: errors are fine, panics
// and unbounded reads are not.
func FuzzUserList(f *testing.F) {
	f.Add([]byte("pool.example\n10.0.0.0/8\n1.2.3.4:3333 doh\n"), false)
	f.Add([]byte("pools: [a.example]\nports: [1]\n"), true)
	f.Add([]byte("pools: &a [*a]\n"), true)
	f.Fuzz(func(t *testing.T, b []byte, isYAML bool) {
		s := newSet()
		if isYAML {
			_ = s.addYAML(strings.NewReader(string(b)), "fuzz.yaml")
		} else {
			_ = s.addText(strings.NewReader(string(b)), KindPool, "user:fuzz", false)
		}
		s.finish()
		s.Domain("x.pool.example")
		s.Addr(netip.MustParseAddr("10.1.1.1"), 3333)
	})
}

func BenchmarkLookupMiss(b *testing.B) {
	s := Builtin()
	a := netip.MustParseAddr("10.20.30.40")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.Domain("www.some-service.example.com")
		s.Addr(a, 443)
	}
}
