package tls

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.hello from live openssl and crypto/tls clients")

// writeCapture stores a captured hello as "ja4 <fingerprint>" followed by the
// record bytes in hex, one record-sized line per 64 bytes.
func writeCapture(t *testing.T, name string, raw []byte, ja4 string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("ja4 " + ja4 + "\n")
	for len(raw) > 0 {
		n := min(64, len(raw))
		b.WriteString(hex.EncodeToString(raw[:n]) + "\n")
		raw = raw[n:]
	}
	if err := os.WriteFile(filepath.Join("testdata", name+".hello"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readCapture(t testing.TB, path string) (raw []byte, ja4 string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "ja4 "); ok {
			ja4 = v
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		raw = append(raw, b...)
	}
	return raw, ja4
}

// TestCapturedHellos replays hellos captured from OpenSSL 3.0 s_client and
// Go 1.26 crypto/tls (regenerate with -update), so the fingerprints stay
// pinned on machines without openssl.
func TestCapturedHellos(t *testing.T) {
	paths, _ := filepath.Glob("testdata/*.hello")
	if len(paths) < 4 {
		t.Fatalf("found %d captures in testdata, want at least 4", len(paths))
	}
	for _, p := range paths {
		raw, want := readCapture(t, p)
		h, st := ParseClientHello(raw)
		if st != OK || h.JA4 != want {
			t.Errorf("%s: status %v JA4 %s, want ok %s", p, st, h.JA4, want)
		}
		if strings.Contains(p, "no-sni-no-alpn") && (h.JA4[3] != 'i' || h.JA4[8:10] != "00" || h.SNI != "" || h.ALPN != nil) {
			t.Errorf("%s: %+v: want no SNI and no ALPN", p, h)
		}
	}
}
