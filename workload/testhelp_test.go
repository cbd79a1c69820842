package workload

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Container IDs and pod UIDs in the forms runtimes print them.
const (
	dockerID = "3f4e2a1b9c0d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f"
	ctrdID   = "9b1c5e0f2a7d44c1b8e3f6a2d5c9e0b7a4f1d8c3e6b9a2f5d0c7e4b1a8f3d6c9"
	crioID   = "c6a0e4b8f2d6a0c4e8b2f6d0a4c8e2b6f0d4a8c2e6b0f4d8a2c6e0b4f8d2a6c0"
	podmanID = "e1d2c3b4a5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	podUID   = "5a6c3e1f-8b2d-4e7a-9c0f-1d2e3f4a5b6c"
	podUIDus = "5a6c3e1f_8b2d_4e7a_9c0f_1d2e3f4a5b6c"
)

// fakeProc builds a procfs tree: files maps "PID/relative/path" to content.
func fakeProc(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func pidPath(pid int, rel string) string { return strconv.Itoa(pid) + "/" + rel }

func environ(kv ...string) string {
	s := ""
	for _, x := range kv {
		s += x + "\x00"
	}
	return s
}
