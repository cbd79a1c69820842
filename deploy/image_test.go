package deploy

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestImageBuildsAndStarts builds the image as CI does (no daemon: deploy/image/build.sh with
// crane), reads the OCI tarball back with the standard library, checks its config, and runs
// the binary of its only layer.
func TestImageBuildsAndStarts(t *testing.T) {
	tool(t, "crane") // skip (or fail under make chart-check) when crane is not built
	if os.Getenv("MINERGUARD_REQUIRE_TOOLS") == "" {
		// A second static build of the binary: run by make chart-check, not by every go test.
		t.Skip("the image build runs under make chart-check")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "image.tar")
	if o, err := exec.Command("image/build.sh", out, "9.9.9-test").CombinedOutput(); err != nil {
		t.Fatalf("image/build.sh: %v\n%s", err, o)
	}
	blobs := readTar(t, out, 256<<20)
	var index struct {
		Manifests []struct{ Digest, MediaType string }
	}
	mustJSON(t, blobs["index.json"], &index)
	if len(index.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(index.Manifests))
	}
	blob := func(digest string) []byte {
		b, ok := blobs["blobs/"+strings.Replace(digest, ":", "/", 1)]
		if !ok {
			t.Fatalf("blob %s missing from the layout", digest)
		}
		return b
	}
	var manifest struct {
		MediaType string
		Config    struct{ Digest string }
		Layers    []struct {
			Digest, MediaType string
			Size              int64
		}
	}
	mustJSON(t, blob(index.Manifests[0].Digest), &manifest)
	var cfg struct {
		Architecture, OS string
		Config           struct {
			Entrypoint, Cmd []string
			User            string
			Labels          map[string]string
		}
	}
	mustJSON(t, blob(manifest.Config.Digest), &cfg)
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s", cfg.OS, cfg.Architecture)
	}
	if strings.Join(cfg.Config.Entrypoint, " ") != "/minerguard" || len(cfg.Config.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q, want [/minerguard] and none", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	if cfg.Config.User != "0:0" {
		t.Errorf("user %q, want 0:0", cfg.Config.User)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.title":   "minerguard",
		"org.opencontainers.image.source":  "https://github.com/minerguard/minerguard",
		"org.opencontainers.image.version": "9.9.9-test",
	} {
		if cfg.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cfg.Config.Labels[k], v)
		}
	}
	if cfg.Config.Labels["org.opencontainers.image.revision"] == "" {
		t.Error("no revision label")
	}
	if len(manifest.Layers) != 1 {
		t.Fatalf("%d layers, want the binary's only", len(manifest.Layers))
	}
	files := readTar(t, "", 256<<20, blob(manifest.Layers[0].Digest)...)
	if len(files) != 1 || files["minerguard"] == nil {
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		t.Fatalf("layer holds %v, want only minerguard", names)
	}
	bin := filepath.Join(dir, "minerguard")
	if err := os.WriteFile(bin, files["minerguard"], 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked: it cannot start in an empty image")
		}
	}
	f.Close()
	// Like the container runtime would: the entrypoint with the image's only file system.
	o, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(o), "minerguard 9.9.9-test") {
		t.Fatalf("minerguard version from the image: %v: %q", err, o)
	}
	t.Logf("image: %d bytes compressed layer; %s", manifest.Layers[0].Size, strings.TrimSpace(string(o)))
}

// readTar returns the regular files of a tar file (path) or of data (gzip-compressed or not),
// refusing more than max bytes in all.
func readTar(t *testing.T, path string, max int64, data ...byte) map[string][]byte {
	t.Helper()
	var r io.Reader = bytes.NewReader(data)
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r = f
	}
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	} else {
		r = br
	}
	out := map[string][]byte{}
	tr := tar.NewReader(r)
	var total int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if total += h.Size; total > max {
			t.Fatalf("tar holds over %d bytes", max)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(filepath.Clean(h.Name), "./")] = b
	}
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}
