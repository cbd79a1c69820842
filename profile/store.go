package profile

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The bbolt layout: bucket "meta" holds "schema" (decimal); bucket "profiles" holds one JSON
// wireProfile per workload, keyed by workload. One value per workload keeps a commit to the
// changed workloads only.
const schemaVersion = 1

var (
	bucketMeta     = []byte("meta")
	bucketProfiles = []byte("profiles")
	keySchema      = []byte("schema")
)

// DefaultOpenTimeout is used when Open is given a timeout ≤ 0: never wait forever for a lock.
const DefaultOpenTimeout = time.Second

// Open opens (creating if needed) the profile state at path and loads every profile. The
// file is locked: a second process (or a second Open) fails after timeout with an error
// naming the holder's pid when /proc/locks tells it. A state written by a newer schema is
// refused, and so is a damaged file (a *DamagedError; OpenOrRecover moves it aside instead).
// Opening writes nothing unless the file is new.
func Open(path string, cfg Config, timeout time.Duration) (*Book, error) {
	return open(path, cfg, timeout, false)
}

// OpenReadOnly loads an existing state without ever writing it: Commit keeps changes in
// memory only. Several read-only opens may share the file, but not with an Open (a running
// sensor), which holds the lock exclusively. A damaged file is refused with a *DamagedError and
// left where it is.
func OpenReadOnly(path string, cfg Config, timeout time.Duration) (*Book, error) {
	return open(path, cfg, timeout, true)
}

func open(path string, cfg Config, timeout time.Duration, ro bool) (*Book, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultOpenTimeout
	}
	if ro {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("opening profile state: %w", err)
		}
	} else if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("opening profile state: %w", err)
		}
	}
	// An existing file is checked before bbolt maps it (damage.go); a new one bbolt creates.
	if err := verifyLocked(path, !ro, timeout); err != nil && !(!ro && errors.Is(err, os.ErrNotExist)) {
		return nil, err
	}
	return load(path, cfg, timeout, ro)
}

// load opens the checked file with bbolt, runs bbolt's consistency check and reads every
// profile. A fault or panic inside bbolt (a damage the structural check did not see) is
// recovered and reported as damage, never a crash.
func load(path string, cfg Config, timeout time.Duration, ro bool) (b *Book, err error) {
	var (
		db   *bolt.DB
		file *os.File
	)
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		// Release the file (and its lock) however far bbolt got.
		func() {
			defer func() { _ = recover() }()
			if db != nil {
				db.Close()
			} else if file != nil {
				file.Close()
			}
		}()
		b, err = nil, damaged(path, "bbolt failed reading it: %v", r)
	}()
	// A fault in the mapping (a page past the end of the file) panics instead of killing
	// the process; only this goroutine reads the mapping during the load.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	openFile := func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: ro, OpenFile: openFile})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("profile state %s is in use by another minerguard%s (waited %v)", path, lockHolder(path), timeout)
	}
	if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrVersionMismatch) {
		return nil, damaged(path, "%v", err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening profile state %s: %w", path, err)
	}
	if err := check(db, path); err != nil {
		db.Close()
		return nil, err
	}
	b = NewMemory(cfg)
	b.db, b.path, b.readOnly = db, path, ro
	fresh := false
	err = db.View(func(tx *bolt.Tx) error {
		meta, ps := tx.Bucket(bucketMeta), tx.Bucket(bucketProfiles)
		if meta == nil || ps == nil {
			fresh = true
			return nil
		}
		if err := checkSchema(path, meta.Get(keySchema)); err != nil {
			return err
		}
		return ps.ForEach(func(k, v []byte) error {
			var w wireProfile
			if err := json.Unmarshal(v, &w); err != nil {
				return damaged(path, "profile %q does not decode: %v", trunc(string(k)), err)
			}
			pr, err := fromWire(w)
			if err != nil {
				return damaged(path, "%v", err)
			}
			p, err := b.build(pr)
			if err != nil {
				return err
			}
			b.profiles[pr.Workload] = p
			return nil
		})
	})
	if err == nil && fresh && !ro {
		// A new file (or one without our buckets): write the layout once.
		err = db.Update(func(tx *bolt.Tx) error {
			meta, err := tx.CreateBucketIfNotExists(bucketMeta)
			if err != nil {
				return err
			}
			if err := checkSchema(path, meta.Get(keySchema)); err != nil {
				return err
			}
			if err := meta.Put(keySchema, []byte(strconv.Itoa(schemaVersion))); err != nil {
				return err
			}
			_, err = tx.CreateBucketIfNotExists(bucketProfiles)
			return err
		})
	}
	if err != nil {
		db.Close()
		var de *DamagedError
		if errors.As(err, &de) {
			return nil, err
		}
		return nil, fmt.Errorf("loading profile state %s: %w", path, err)
	}
	clear(b.dirty)
	return b, nil
}

// check runs bbolt's own consistency check (freelist against reachable pages, key order,
// page types). Its cost is one walk of the file, already bounded by verifyFile; only the
// first few problems are kept, the rest drained so the check's goroutine ends.
func check(db *bolt.DB, path string) error {
	var errs []string
	n := 0
	err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			if n++; len(errs) < maxCheckErrors {
				errs = append(errs, err.Error())
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checking profile state %s: %w", path, err)
	}
	if n > 0 {
		return damaged(path, "bbolt's check found %d problems: %s", n, strings.Join(errs, "; "))
	}
	return nil
}

// checkSchema accepts a missing version (a new file) or one we understand. A version that is
// not a number is damage; a newer one is not (a newer minerguard wrote it).
func checkSchema(path string, v []byte) error {
	if v == nil {
		return nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return damaged(path, "schema version %q is not a number", trunc(string(v)))
	}
	if n > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this minerguard understands (%d); use a newer minerguard or another state file", n, schemaVersion)
	}
	return nil
}

// Commit writes every change since the last Commit in one bbolt transaction (fsynced before
// it returns). A Book from NewMemory or OpenReadOnly writes nothing. On failure the changes stay
// pending for the next Commit, and CommitErrors counts it.
func (b *Book) Commit() error {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	b.mu.Lock()
	if b.db == nil || b.readOnly {
		clear(b.dirty)
		b.mu.Unlock()
		return nil
	}
	if len(b.dirty) == 0 {
		b.mu.Unlock()
		return nil
	}
	// Marshal under the lock (a consistent snapshot), write without it so Check is not
	// held up by the fsync.
	puts := map[string][]byte{}
	var dels []string
	var merr error
	for w := range b.dirty {
		p := b.profiles[w]
		if p == nil {
			dels = append(dels, w)
			continue
		}
		v, err := json.Marshal(toWire(p.export()))
		if err != nil {
			merr = err
			break
		}
		puts[w] = v
	}
	if merr == nil {
		clear(b.dirty)
	}
	b.mu.Unlock()
	err := merr
	if err == nil {
		err = b.db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket(bucketProfiles)
			for w, v := range puts {
				if err := bk.Put([]byte(w), v); err != nil {
					return err
				}
			}
			for _, w := range dels {
				if err := bk.Delete([]byte(w)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.st.CommitErrors++
		for w := range puts {
			b.dirty[w] = struct{}{}
		}
		for _, w := range dels {
			b.dirty[w] = struct{}{}
		}
		return fmt.Errorf("committing profiles to %s: %w", b.path, err)
	}
	b.st.Commits++
	return nil
}

// Close commits what is pending and releases the state file.
func (b *Book) Close() error {
	err := b.Commit()
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	if b.db != nil {
		if cerr := b.db.Close(); err == nil {
			err = cerr
		}
		b.db = nil
	}
	return err
}

// Path is the state file ("" for a memory Book).
func (b *Book) Path() string { return b.path }

// lockHolder finds the pid holding a lock on path in /proc/locks: " (pid N)", or "" when it
// cannot tell.
func lockHolder(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return ""
	}
	defer f.Close()
	want := ":" + strconv.FormatUint(st.Ino, 10)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
		fs := strings.Fields(sc.Text())
		if len(fs) >= 6 && strings.HasSuffix(fs[5], want) && fs[1] != "->" {
			return " (pid " + fs[4] + ")"
		}
	}
	return ""
}
