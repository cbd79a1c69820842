package profile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"syscall"
	"time"
)

// bbolt maps the state file and follows the page ids it finds there: a file cut short gives
// SIGBUS, a scribbled page id a read outside the mapping, and either kills the process (the
// Go runtime does not turn such faults into panics). So the file is read with pread first and
// its structure checked: the meta pages (magic, version, checksum), the file long enough for
// the high-water mark they give, and every page reachable from them (freelist and bucket
// tree) inside that mark, of the right type, its elements inside the page, none visited twice.
// Only then does bbolt map it, and its own consistency check (tx.Check) runs on the result.
// The layout below is bbolt's on-disk format, version 2 (go.etcd.io/bbolt/internal/common).
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	metaSize         = 64 // magic, version, pageSize, flags u32; root InBucket (2×u64); freelist, pgid, txid, checksum u64
	metaSumLen       = 56 // the checksum covers the meta up to itself
	elemSize         = 16 // branch: pos, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	inBucketSize     = 16 // root pgid u64, sequence u64
	flagBranch       = 0x01
	flagLeaf         = 0x02
	flagFreelist     = 0x10
	bucketLeafFlag   = 0x01
	noFreelist       = ^uint64(0)
	maxTreeDepth     = 64 // a B+tree of 2^64 pages is far shallower
	minPageSize      = 1024
	maxPageSize      = 64 << 10
	maxCheckErrors   = 5 // tx.Check errors kept for the report; the rest are drained and dropped
	damagedSuffix    = ".damaged-"
	damagedTimeStamp = "20060102T150405Z"
)

// DamagedError says the state file cannot be read safely. A sensor moves such a file aside
// and starts from an empty state (OpenOrRecover); Open and OpenReadOnly refuse it.
type DamagedError struct {
	Path   string
	Reason string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("profile state %s is damaged: %s", e.Path, e.Reason)
}

func damaged(path, format string, args ...any) error {
	return &DamagedError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// Recovery tells what OpenOrRecover did with a damaged state file.
type Recovery struct {
	Path    string // the state file
	MovedTo string // where the damaged file now is, kept for forensics
	Reason  string // what was wrong with it
}

// OpenOrRecover is Open for a process that must run whatever is on disk (the sensor): a
// damaged state file is moved aside to <path>.damaged-<UTC time> and an empty state started
// in its place. The Recovery is non-nil when that happened; every workload then learns again
// from scratch (a profile is only ever created learning). Errors that are not damage (the
// file is locked by another sensor, the directory is not writable, a newer schema) are
// returned as Open returns them.
func OpenOrRecover(path string, cfg Config, timeout time.Duration, now time.Time) (*Book, *Recovery, error) {
	b, err := Open(path, cfg, timeout)
	var de *DamagedError
	if !errors.As(err, &de) {
		return b, nil, err
	}
	moved, merr := moveAside(path, timeout, now)
	if merr != nil {
		return nil, nil, fmt.Errorf("%w; moving it aside failed: %v", err, merr)
	}
	b, err = Open(path, cfg, timeout)
	if err != nil {
		return nil, nil, fmt.Errorf("starting an empty profile state after moving the damaged one to %s: %w", moved, err)
	}
	return b, &Recovery{Path: path, MovedTo: moved, Reason: de.Reason}, nil
}

// moveAside renames a damaged state file while holding its lock, so a file some other
// process has open for writing is never moved.
func moveAside(path string, timeout time.Duration, now time.Time) (string, error) {
	f, err := lockFile(path, true, timeout)
	if err != nil {
		return "", err
	}
	defer f.Close()
	base := path + damagedSuffix + now.UTC().Format(damagedTimeStamp)
	to := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, os.ErrNotExist) {
			break
		}
		if i > 100 {
			return "", fmt.Errorf("%s and 100 more names beside it exist", base)
		}
		to = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, to); err != nil {
		return "", err
	}
	return to, nil
}

// lockFile opens path and takes the lock bbolt takes (flock, exclusive for a writer, shared
// for a reader), waiting at most timeout. Closing the file releases it.
func lockFile(path string, exclusive bool, timeout time.Duration) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("profile state %s is in use by another minerguard%s (waited %v)", path, lockHolder(path), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verifyLocked checks an existing state file under its lock, so no writer is half-way
// through a commit while it is read. A nil error means bbolt may map it.
func verifyLocked(path string, exclusive bool, timeout time.Duration) error {
	f, err := lockFile(path, exclusive, timeout)
	if err != nil {
		return err
	}
	defer f.Close()
	return verifyFile(f, path)
}

type boltMeta struct {
	pageSize                  uint32
	root, freelist, hwm, txid uint64
}

// readMeta decodes the meta page in b (its page header first); the error says why it is not
// a valid one.
func readMeta(b []byte) (boltMeta, error) {
	if len(b) < pageHeaderSize+metaSize {
		return boltMeta{}, errors.New("cut short")
	}
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, errors.New("not a bbolt meta page (magic)")
	}
	if v := le.Uint32(m[4:]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("bbolt format version %d, want %d", v, boltVersion)
	}
	h := fnv.New64a()
	h.Write(m[:metaSumLen])
	if h.Sum64() != le.Uint64(m[metaSumLen:]) {
		return boltMeta{}, errors.New("checksum mismatch")
	}
	return boltMeta{pageSize: le.Uint32(m[8:]), root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]),
		hwm: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, nil
}

// verifier walks a bbolt file with pread; it never follows an id it has not bounded first.
type verifier struct {
	f    io.ReaderAt
	path string
	size int64
	psz  uint64
	hwm  uint64
	seen map[uint64]bool
}

// verifyFile checks the structure of an existing state file; damage is a *DamagedError,
// anything else (an I/O error) is returned as is.
func verifyFile(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return damaged(path, "the file is empty (0 bytes)")
	}
	if size < 2*minPageSize {
		return damaged(path, "the file is %d bytes, shorter than its two meta pages", size)
	}
	var buf [pageHeaderSize + metaSize]byte
	read := func(off int64) ([]byte, error) {
		n, err := f.ReadAt(buf[:], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return buf[:n], nil
	}
	// The page size as bbolt finds it: from the first meta page, else from a valid second
	// one at 1 KiB << i.
	b, err := read(0)
	if err != nil {
		return err
	}
	m0, err0 := readMeta(b)
	psz := uint64(m0.pageSize)
	if err0 != nil {
		psz = 0
		for i := range 15 {
			pos := int64(minPageSize) << i
			if pos >= size-minPageSize {
				break
			}
			if b, err = read(pos); err != nil {
				return err
			}
			if m, err := readMeta(b); err == nil {
				psz = uint64(m.pageSize)
				break
			}
		}
		if psz == 0 {
			return damaged(path, "no valid meta page (first: %v)", err0)
		}
	}
	if psz < minPageSize || psz > maxPageSize || psz&(psz-1) != 0 {
		return damaged(path, "page size %d in its meta page is not a power of two from %d to %d", psz, minPageSize, maxPageSize)
	}
	if uint64(size) < 2*psz {
		return damaged(path, "the file is %d bytes, shorter than its two %d-byte meta pages", size, psz)
	}
	// Both meta pages again at the page size: bbolt uses the valid one with the higher
	// transaction id.
	metas := [2]boltMeta{}
	errs := [2]error{}
	for i := range 2 {
		if b, err = read(int64(i) * int64(psz)); err != nil {
			return err
		}
		metas[i], errs[i] = readMeta(b)
	}
	var m boltMeta
	switch {
	case errs[0] != nil && errs[1] != nil:
		return damaged(path, "both meta pages are invalid (%v; %v)", errs[0], errs[1])
	case errs[1] != nil || (errs[0] == nil && metas[0].txid >= metas[1].txid):
		m = metas[0]
	default:
		m = metas[1]
	}
	if uint64(m.pageSize) != psz {
		return damaged(path, "meta page says page size %d, found at %d", m.pageSize, psz)
	}
	if m.hwm < 3 || m.hwm > uint64(size)/psz {
		return damaged(path, "the file is %d bytes but its meta page counts %d pages of %d bytes (%d bytes): cut short", size, m.hwm, psz, m.hwm*psz)
	}
	v := &verifier{f: f, path: path, size: size, psz: psz, hwm: m.hwm, seen: map[uint64]bool{0: true, 1: true}}
	if m.freelist != noFreelist {
		if err := v.freelist(m.freelist); err != nil {
			return err
		}
	}
	return v.tree(m.root, 0)
}

// page reads page id and its overflow pages after checking they lie below the high-water
// mark, and marks them seen (a page reached twice is a cycle or a double reference).
func (v *verifier) page(id uint64, what string) ([]byte, error) {
	if id < 2 || id >= v.hwm {
		return nil, damaged(v.path, "%s page id %d is outside 2..%d", what, id, v.hwm-1)
	}
	// One read for the page itself; its overflow pages, if any, with a second one.
	p := make([]byte, v.psz)
	if _, err := v.f.ReadAt(p, int64(id*v.psz)); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if got := le.Uint64(p[0:]); got != id {
		return nil, damaged(v.path, "%s page %d says it is page %d", what, id, got)
	}
	over := uint64(le.Uint32(p[12:]))
	if over >= v.hwm-id {
		return nil, damaged(v.path, "%s page %d runs %d pages past the high-water mark %d", what, id, over, v.hwm)
	}
	for i := id; i <= id+over; i++ {
		if v.seen[i] {
			return nil, damaged(v.path, "page %d is reached twice", i)
		}
		v.seen[i] = true
	}
	if over > 0 {
		p = append(p, make([]byte, over*v.psz)...)
		if _, err := v.f.ReadAt(p[v.psz:], int64((id+1)*v.psz)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (v *verifier) freelist(id uint64) error {
	p, err := v.page(id, "freelist")
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	if fl := le.Uint16(p[8:]); fl != flagFreelist {
		return damaged(v.path, "freelist page %d has type 0x%x", id, fl)
	}
	start, n := uint64(pageHeaderSize), uint64(le.Uint16(p[10:]))
	if n == 0xFFFF { // the real count is the first element
		if len(p) < pageHeaderSize+8 {
			return damaged(v.path, "freelist page %d is cut short", id)
		}
		n, start = le.Uint64(p[pageHeaderSize:]), pageHeaderSize+8
	}
	if n > (uint64(len(p))-start)/8 {
		return damaged(v.path, "freelist page %d lists %d ids, more than fit in it", id, n)
	}
	for i := range n {
		if f := le.Uint64(p[start+8*i:]); f < 2 || f >= v.hwm {
			return damaged(v.path, "freelist page %d lists page %d, outside 2..%d", id, f, v.hwm-1)
		}
	}
	return nil
}

// tree checks the bucket page id and everything below it.
func (v *verifier) tree(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return damaged(v.path, "the page tree is deeper than %d", maxTreeDepth)
	}
	p, err := v.page(id, "bucket")
	if err != nil {
		return err
	}
	return v.node(p, id, depth)
}

// node checks the branch or leaf page p (a page read from the file, or an inline bucket's).
func (v *verifier) node(p []byte, id uint64, depth int) error {
	le := binary.LittleEndian
	if len(p) < pageHeaderSize {
		return damaged(v.path, "inline bucket in page %d is cut short", id)
	}
	flags, n := le.Uint16(p[8:]), int(le.Uint16(p[10:]))
	if pageHeaderSize+n*elemSize > len(p) {
		return damaged(v.path, "page %d has %d elements, more than fit in it", id, n)
	}
	// span returns the bytes at the element's pos (relative to the element) of length l.
	span := func(i int, pos, l uint32) ([]byte, bool) {
		at := uint64(pageHeaderSize+i*elemSize) + uint64(pos)
		if at+uint64(l) > uint64(len(p)) {
			return nil, false
		}
		return p[at : at+uint64(l)], true
	}
	switch flags {
	case flagBranch:
		if n == 0 {
			return damaged(v.path, "branch page %d is empty", id)
		}
		for i := range n {
			e := p[pageHeaderSize+i*elemSize:]
			if _, ok := span(i, le.Uint32(e[0:]), le.Uint32(e[4:])); !ok {
				return damaged(v.path, "branch page %d element %d points outside the page", id, i)
			}
			if err := v.tree(le.Uint64(e[8:]), depth+1); err != nil {
				return err
			}
		}
	case flagLeaf:
		for i := range n {
			e := p[pageHeaderSize+i*elemSize:]
			kv, ok := span(i, le.Uint32(e[4:]), le.Uint32(e[8:])+le.Uint32(e[12:]))
			if !ok || uint64(le.Uint32(e[8:]))+uint64(le.Uint32(e[12:])) > uint64(len(p)) {
				return damaged(v.path, "leaf page %d element %d points outside the page", id, i)
			}
			if le.Uint32(e[0:])&bucketLeafFlag == 0 {
				continue
			}
			val := kv[le.Uint32(e[8:]):]
			if len(val) < inBucketSize {
				return damaged(v.path, "leaf page %d element %d: a bucket header of %d bytes", id, i, len(val))
			}
			if root := le.Uint64(val); root != 0 {
				if err := v.tree(root, depth+1); err != nil {
					return err
				}
			} else if err := v.node(val[inBucketSize:], id, depth+1); err != nil {
				return err
			}
		}
	default:
		return damaged(v.path, "page %d has type 0x%x where a branch or leaf page belongs", id, flags)
	}
	return nil
}
