package capture

import (
	"slices"
	"testing"
)

// A named namespace deleted and a new one given its freed inode between two scans (the kernel
// reuses namespace inodes at once) is reported as the old one removed and the new one added;
// the same namespace seen by a process's path instead of its name is no change.
func TestWatcherInodeReused(t *testing.T) {
	lists := [][]Netns{
		{{Inode: 7, Dev: 4, Path: "/var/run/netns/old", Name: "old"}, {Inode: 9, Dev: 4, Path: "/var/run/netns/keep", Name: "keep"}},
		{{Inode: 7, Dev: 4, Path: "/var/run/netns/new", Name: "new"}, {Inode: 9, Dev: 4, Path: "/proc/42/ns/net", PID: 42}},
		{{Inode: 7, Dev: 4, Path: "/var/run/netns/new", Name: "new"}, {Inode: 9, Dev: 4, Path: "/proc/42/ns/net", PID: 42}},
	}
	w := NewWatcher(WatchOptions{})
	i := 0
	w.list = func() ([]Netns, error) { l := lists[i]; i++; return l, nil }
	var got []string
	record := func(e NetnsEvent) { got = append(got, e.Kind.String()+" "+e.Netns.Path) }
	for range lists {
		if err := w.scan(record); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"added /var/run/netns/old", "added /var/run/netns/keep", "removed /var/run/netns/old", "added /var/run/netns/new"}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}
