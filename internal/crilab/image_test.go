package crilab

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// The archive is an OCI image layout: every blob is named by its digest, the index names each
// image for containerd, and each manifest's config and layer are in the archive. It is the
// same for the same input (no clock in it).
func TestWriteOCIArchive(t *testing.T) {
	files := []File{{Path: "payload", Mode: 0o755, Data: []byte("\x7fELF not really")}}
	images := []Image{{Name: PauseImage, Entrypoint: []string{"/payload"}, Cmd: []string{"pause"}},
		{Name: PayloadImage, Entrypoint: []string{"/payload"}, Cmd: []string{"pause"}}}
	var buf, again bytes.Buffer
	if err := WriteOCIArchive(&buf, files, images); err != nil {
		t.Fatal(err)
	}
	if err := WriteOCIArchive(&again, files, images); err != nil || !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Errorf("two archives of the same input differ (%v)", err)
	}
	entries := map[string][]byte{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		entries[h.Name] = b
	}
	if string(entries["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout %q", entries["oci-layout"])
	}
	for name, b := range entries {
		if d, ok := strings.CutPrefix(name, "blobs/sha256/"); ok && d != "" {
			sum := sha256.Sum256(b)
			if hex.EncodeToString(sum[:]) != d {
				t.Errorf("blob %s has digest %x", d, sum)
			}
		}
	}
	blob := func(digest string) []byte {
		t.Helper()
		b, ok := entries["blobs/sha256/"+strings.TrimPrefix(digest, "sha256:")]
		if !ok {
			t.Fatalf("blob %s missing", digest)
		}
		return b
	}
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(entries["index.json"], &index); err != nil || len(index.Manifests) != 2 {
		t.Fatalf("index.json %s: %v", entries["index.json"], err)
	}
	for i, m := range index.Manifests {
		if m.Annotations["io.containerd.image.name"] != images[i].Name || m.MediaType != mediaManifest || m.Platform == nil || m.Platform.OS != "linux" {
			t.Errorf("manifest %d: %+v", i, m)
		}
		var man struct {
			Config descriptor   `json:"config"`
			Layers []descriptor `json:"layers"`
		}
		if err := json.Unmarshal(blob(m.Digest), &man); err != nil || len(man.Layers) != 1 {
			t.Fatalf("manifest %d: %v", i, err)
		}
		var cfg struct {
			Config struct{ Entrypoint, Cmd []string }
			RootFS struct {
				DiffIDs []string `json:"diff_ids"`
			} `json:"rootfs"`
		}
		if err := json.Unmarshal(blob(man.Config.Digest), &cfg); err != nil || cfg.Config.Entrypoint[0] != "/payload" || cfg.RootFS.DiffIDs[0] != man.Layers[0].Digest {
			t.Errorf("config %d: %+v %v", i, cfg, err)
		}
		lr := tar.NewReader(bytes.NewReader(blob(man.Layers[0].Digest)))
		h, err := lr.Next()
		if err != nil || h.Name != "payload" || h.Mode != 0o755 || h.Size != int64(len(files[0].Data)) {
			t.Errorf("layer %d: %+v %v", i, h, err)
		}
	}
}
