// Package statetest makes real profile state files (bbolt, written by package profile) and
// damages them with real byte writes, the ways a full disk, a crash or a person do: the
// tests of every package that opens a state use the same kinds.
package statetest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/minerguard/minerguard/profile"
	bolt "go.etcd.io/bbolt"
)

// Workload is one of the workloads Make writes; it is enforcing in the file.
const Workload = "shop/w000"

// bbolt's on-disk layout (format 2): page header 16 bytes, the meta right after it.
const (
	hdr      = 16
	offRoot  = hdr + 16
	offFree  = hdr + 32
	offHWM   = hdr + 40
	offTxid  = hdr + 48
	offSum   = hdr + 56
	pageSize = 4096
)

// Make writes a state of 120 enforcing workloads with 30 destinations each to path: a file
// whose used pages reach past its half, with a freelist and a branch page (the profiles
// bucket no longer fits in one page).
func Make(t testing.TB, path string) {
	t.Helper()
	b, err := profile.Open(path, profile.Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for w := range 120 {
		pr := profile.Profile{Workload: fmt.Sprintf("shop/w%03d", w), State: profile.Enforcing, Since: now}
		for e := range 30 {
			pr.Entries = append(pr.Entries, profile.Entry{Dest: profile.Dest{
				Name: fmt.Sprintf("svc%02d.internal.example", e), Port: 443, Proto: profile.TCP},
				IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 1, byte(w), byte(e)})}, First: now})
		}
		if err := b.Put(pr); err != nil {
			t.Fatal(err)
		}
		if w%20 == 19 { // several commits: pages are freed and the freelist has entries
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	m := meta(t, read(t, path))
	if fi, _ := os.Stat(path); m.hwm*pageSize <= uint64(fi.Size())/2 {
		t.Fatalf("statetest: %s uses %d of %d bytes: truncating it to half would not damage it", path, m.hwm*pageSize, fi.Size())
	}
}

// Kind is one way of damaging a state file.
type Kind struct {
	Name   string
	Damage func(t testing.TB, path string)
}

// Kinds are every damage the tests try.
func Kinds() []Kind {
	return []Kind{
		{"truncated-to-half", func(t testing.TB, p string) { fi := stat(t, p); truncate(t, p, fi.Size()/2) }},
		{"truncated-to-7-bytes", func(t testing.TB, p string) { truncate(t, p, 7) }},
		{"zero-length", func(t testing.TB, p string) { truncate(t, p, 0) }},
		{"meta-pages-scribbled", func(t testing.TB, p string) {
			scribble(t, p, hdr, 64)
			scribble(t, p, pageSize+hdr, 64)
		}},
		{"data-page-scribbled", func(t testing.TB, p string) {
			// The profiles bucket's root (a branch page): its header kept, its elements noise.
			scribble(t, p, int64(profilesRoot(t, p))*pageSize+hdr, pageSize-hdr)
		}},
		{"freelist-page-scribbled", func(t testing.TB, p string) {
			scribble(t, p, int64(meta(t, read(t, p)).freelist)*pageSize, pageSize)
		}},
		{"freelist-lists-a-live-page", func(t testing.TB, p string) {
			// Well-formed, but it frees the root page: only bbolt's own check sees this.
			m := meta(t, read(t, p))
			pg := make([]byte, pageSize)
			binary.LittleEndian.PutUint64(pg[0:], m.freelist)
			binary.LittleEndian.PutUint16(pg[8:], 0x10)
			binary.LittleEndian.PutUint16(pg[10:], 1)
			binary.LittleEndian.PutUint64(pg[hdr:], m.root)
			write(t, p, int64(m.freelist)*pageSize, pg)
		}},
		{"profile-value-scribbled", func(t testing.TB, p string) {
			// The bytes of one stored profile (its JSON) overwritten: the pages are sound.
			b := read(t, p)
			i := bytes.Index(b, []byte(`"svc07.internal.example"`))
			if i < 0 {
				t.Fatal("statetest: no profile value found")
			}
			write(t, p, int64(i), []byte("\x00\xff{{{\x01"))
		}},
		{"garbage-with-valid-magic", func(t testing.TB, p string) {
			// Random bytes, with meta pages that pass bbolt's validation (magic, version,
			// checksum) and point into the noise.
			fi := stat(t, p)
			b := make([]byte, fi.Size())
			r := rand.New(rand.NewPCG(1, 2))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			n := uint64(fi.Size() / pageSize)
			for i := range 2 {
				m := b[i*pageSize+hdr:]
				le := binary.LittleEndian
				le.PutUint32(m[0:], 0xED0CDAED)
				le.PutUint32(m[4:], 2)
				le.PutUint32(m[8:], pageSize)
				le.PutUint64(m[16:], 2+r.Uint64N(n-2))
				le.PutUint64(m[32:], 2+r.Uint64N(n-2))
				le.PutUint64(m[40:], n)
				h := fnv.New64a()
				h.Write(m[:56])
				le.PutUint64(m[56:], h.Sum64())
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
}

type boltMeta struct{ root, freelist, hwm, txid uint64 }

// meta is the meta page bbolt would use (the higher transaction id).
func meta(t testing.TB, b []byte) boltMeta {
	t.Helper()
	le := binary.LittleEndian
	get := func(page int) boltMeta {
		m := b[page*pageSize:]
		return boltMeta{le.Uint64(m[offRoot:]), le.Uint64(m[offFree:]), le.Uint64(m[offHWM:]), le.Uint64(m[offTxid:])}
	}
	if len(b) < 2*pageSize {
		t.Fatalf("statetest: %d bytes is no state file", len(b))
	}
	m0, m1 := get(0), get(1)
	if m1.txid > m0.txid {
		return m1
	}
	return m0
}

// profilesRoot is the root page of the profiles bucket, asked of bbolt itself.
func profilesRoot(t testing.TB, path string) uint64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var root uint64
	db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("profiles")); b != nil {
			root = uint64(b.Root())
		}
		return nil
	})
	if root < 2 {
		t.Fatalf("statetest: profiles bucket root %d", root)
	}
	return root
}

func read(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func stat(t testing.TB, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func truncate(t testing.TB, p string, n int64) {
	t.Helper()
	if err := os.Truncate(p, n); err != nil {
		t.Fatal(err)
	}
}

func write(t testing.TB, p string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// scribble overwrites n bytes at off with noise (seeded: a failure replays).
func scribble(t testing.TB, p string, off int64, n int) {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(off), uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	write(t, p, off, b)
}
