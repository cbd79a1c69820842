package crilab

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"
)

// Image is one image of an OCI archive: its full reference and what it runs.
type Image struct {
	Name       string   // full reference, e.g. "minerguard.test/lab/miner:1"
	Entrypoint []string // e.g. ["/payload"]
	Cmd        []string // default arguments
}

// File is a regular file of the images' one layer.
type File struct {
	Path string // without a leading slash, e.g. "payload"
	Mode int64
	Data []byte
}

// Media types of the OCI image spec (v1.1), written out so that no registry library is needed.
const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// WriteOCIArchive writes an OCI image layout as a tar stream (what `ctr images import`, podman
// load and skopeo read): one uncompressed layer holding files, shared by every image, and
// per image a config and a manifest, named in index.json by the annotations containerd
// (io.containerd.image.name) and the OCI spec (org.opencontainers.image.ref.name) read. The
// images are for this machine's architecture, and the archive is the same for the same input.
func WriteOCIArchive(w io.Writer, files []File, images []Image) error {
	var layer bytes.Buffer
	lt := tar.NewWriter(&layer)
	epoch := time.Unix(0, 0)
	for _, f := range files {
		if err := lt.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.Path, Mode: f.Mode, Size: int64(len(f.Data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := lt.Write(f.Data); err != nil {
			return err
		}
	}
	if err := lt.Close(); err != nil {
		return err
	}
	blobs := map[string][]byte{}
	var order []string
	blob := func(mt string, b []byte) descriptor {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		if _, ok := blobs[d]; !ok {
			blobs[d] = b
			order = append(order, d)
		}
		return descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
	}
	layerDesc := blob(mediaLayer, layer.Bytes())
	plat := platform{Architecture: runtime.GOARCH, OS: "linux"}
	index := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}{SchemaVersion: 2, MediaType: mediaIndex}
	for _, im := range images {
		cfg, err := json.Marshal(map[string]any{
			"architecture": plat.Architecture,
			"os":           plat.OS,
			"created":      epoch.UTC(),
			"config":       map[string]any{"Entrypoint": im.Entrypoint, "Cmd": im.Cmd, "Env": []string{"PATH=/"}},
			"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDesc.Digest}},
		})
		if err != nil {
			return err
		}
		man, err := json.Marshal(map[string]any{
			"schemaVersion": 2,
			"mediaType":     mediaManifest,
			"config":        blob(mediaConfig, cfg),
			"layers":        []descriptor{layerDesc},
		})
		if err != nil {
			return err
		}
		d := blob(mediaManifest, man)
		d.Platform = &plat
		d.Annotations = map[string]string{"io.containerd.image.name": im.Name, "org.opencontainers.image.ref.name": im.Name}
		index.Manifests = append(index.Manifests, d)
	}
	idx, err := json.Marshal(index)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := add("index.json", idx); err != nil {
		return err
	}
	for _, d := range order {
		if err := add("blobs/sha256/"+d[len("sha256:"):], blobs[d]); err != nil {
			return fmt.Errorf("blob %s: %w", d, err)
		}
	}
	return tw.Close()
}
