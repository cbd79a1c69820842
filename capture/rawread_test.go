package capture

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// A regular file is read with raw read(2) calls and gives its bytes exactly, in reads of any
// size; a pipe is read as it is (a raw read of it could hold the processor indefinitely).
func TestFileReader(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789abcdef"), 70000) // 1.1 MB: several 1 MiB reads
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := FileReader(f)
	if _, ok := r.(rawFile); !ok {
		t.Fatalf("a regular file is read through %T", r)
	}
	var got bytes.Buffer
	buf := make([]byte, 1<<20+3)
	for {
		n, err := r.Read(buf[:1+len(got.Bytes())%len(buf)]) // uneven sizes
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("read %d bytes, want %d, or they differ", got.Len(), len(want))
	}
	if n, err := r.Read(nil); n != 0 || err != nil {
		t.Errorf("empty read: %d, %v", n, err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if r := FileReader(pr); r != io.Reader(pr) {
		t.Errorf("a pipe is read through %T", r)
	}
}
