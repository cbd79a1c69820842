package dns

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestGopacketFuzzCorpus runs gopacket's committed DNS fuzz corpus
// (layers/testdata/fuzz/FuzzDecodeFromBytes, inputs that once crashed its
// decoder) through Parse. gopacket is already a module dependency, so the
// files are read from the module cache rather than copied here.
func TestGopacketFuzzCorpus(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/gopacket/gopacket").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skipf("gopacket module directory not available: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "layers", "testdata", "fuzz", "FuzzDecodeFromBytes", "*"))
	if len(files) == 0 {
		t.Skip("gopacket fuzz corpus not in module cache")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b, ok := corpusBytes(data)
		if !ok {
			t.Fatalf("%s: unrecognised corpus file", filepath.Base(f))
		}
		m, err := Parse(b) // must not panic; most are rejected
		t.Logf("%s: %d bytes: err=%v questions=%d answers=%d", filepath.Base(f)[:12], len(b), err, len(m.Questions), len(m.Answers))
	}
}

// corpusBytes decodes a "go test fuzz v1" file holding one []byte value.
func corpusBytes(data []byte) ([]byte, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	if !sc.Scan() || sc.Text() != "go test fuzz v1" || !sc.Scan() {
		return nil, false
	}
	lit, ok := strings.CutPrefix(sc.Text(), "[]byte(")
	if !ok {
		return nil, false
	}
	s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	return []byte(s), err == nil
}
