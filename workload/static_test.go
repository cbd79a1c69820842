package workload

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadStatic(t *testing.T) {
	s, err := LoadStatic("testdata/static.yml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 5 {
		t.Errorf("Len = %d, want 5", s.Len())
	}
	proc := fakeProc(t, map[string]string{
		pidPath(1, "cgroup"): "0::/system.slice/docker-" + dockerID + ".scope\n",
		pidPath(2, "cgroup"): "0::/system.slice/docker-3f4e2a1b9c0d" + strings.Repeat("0", 52) + ".scope\n",
		pidPath(3, "cgroup"): "0::/system.slice/docker-" + podmanID + ".scope\n",
	})
	tests := []struct {
		ns   NetnsInfo
		want Identity
		ok   bool
	}{
		{NetnsInfo{Name: "api-canary", PIDs: []int{1}}, Identity{Name: "billing/api", Kind: KindStatic, Source: SourceStatic, Labels: map[string]string{"team": "billing"}}, true},
		{NetnsInfo{Inode: 4026532451, Name: "other"}, Identity{Name: "lab/miner-honeypot", Kind: KindStatic, Source: SourceStatic}, true},
		// Longest prefix wins.
		{NetnsInfo{PIDs: []int{1}}, Identity{Name: "legacy/batch-one", Kind: KindStatic, Source: SourceStatic, Container: dockerID}, true},
		{NetnsInfo{PIDs: []int{2}}, Identity{Name: "legacy/batch", Kind: KindStatic, Source: SourceStatic, Container: "3f4e2a1b9c0d" + strings.Repeat("0", 52)}, true},
		{NetnsInfo{PIDs: []int{3}, Name: "unmapped", Inode: 5}, Identity{}, false},
		{NetnsInfo{}, Identity{}, false},
	}
	for _, tt := range tests {
		tt.ns.ProcRoot = proc
		got, ok := s.Resolve(tt.ns)
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Resolve(%+v) = %+v, %v; want %+v, %v", tt.ns, got, ok, tt.want, tt.ok)
		}
	}
	// Labels handed out are copies.
	id, _ := s.Resolve(NetnsInfo{Name: "api"})
	id.Labels["team"] = "changed"
	if again, _ := s.Resolve(NetnsInfo{Name: "api"}); again.Labels["team"] != "billing" {
		t.Errorf("caller mutated the map: %v", again.Labels)
	}
	var nilStatic *Static
	if _, ok := nilStatic.Resolve(NetnsInfo{Name: "api"}); ok {
		t.Error("nil Static answered")
	}
}

func TestParseStaticErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown top key", "workload:\n  - name: x\n", `m.yml: line 1: unknown key workload`},
		{"unknown entry key", "workloads:\n  - name: x\n    netns: [a]\n    image: nginx\n", `m.yml: line 4: unknown key image`},
		{"wrong type", "workloads:\n  - name: x\n    inodes: [abc]\n", `m.yml: line 3: cannot unmarshal !!str ` + "`abc`" + ` into uint64`},
		{"negative inode", "workloads:\n  - name: x\n    inodes: [-1]\n", `m.yml: line 3: cannot unmarshal !!int ` + "`-1`" + ` into uint64`},
		// yaml.v3 counts parser-error lines from 0 (its decode.go fail()); we pass its text on.
		{"syntax", "workloads:\n  - name: [x\n", `m.yml: line 1: did not find expected ',' or ']'`},
		{"missing name", "workloads:\n  - netns: [a]\n", `m.yml line 2: workloads[0]: name is required`},
		{"no matcher", "workloads:\n  - name: x\n    labels: {a: b}\n", `m.yml line 2: workload "x": needs at least one of netns, inodes, containers`},
		{"bad netns", "workloads:\n  - name: x\n    netns:\n      - ok\n      - ../etc\n", `m.yml line 5: workload "x": "../etc" is not a netns name`},
		{"inode 0", "workloads:\n  - name: x\n    inodes: [0]\n", `m.yml line 3: workload "x": inode 0 is not a namespace`},
		{"short container", "workloads:\n  - name: x\n    containers: [3f4e2a]\n", `m.yml line 3: workload "x": container "3f4e2a" is not 12 to 64 hex characters`},
		{"duplicate", "workloads:\n  - name: x\n    netns: [a]\n  - name: y\n    netns:\n      - a\n", `m.yml line 6: netns a already mapped at line 3`},
		{"two documents", "workloads: []\n---\nworkloads: []\n", `m.yml line 2: only one YAML document is allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseStatic(strings.NewReader(tt.yaml), "m.yml")
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v\n          want %s", err, tt.want)
			}
		})
	}
}

func TestLoadStaticFileErrors(t *testing.T) {
	if _, err := LoadStatic(filepath.Join(t.TempDir(), "missing.yml")); err == nil || !strings.Contains(err.Error(), "missing.yml") {
		t.Errorf("missing file: %v", err)
	}
	p := filepath.Join(t.TempDir(), "big.yml")
	if err := os.WriteFile(p, []byte("# "+strings.Repeat("x", maxStaticFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadStatic(p); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
	for _, empty := range []string{"", "# nothing\n", "workloads: []\n"} {
		s, err := ParseStatic(strings.NewReader(empty), "e.yml")
		if err != nil || s.Len() != 0 {
			t.Errorf("ParseStatic(%q) = %v, %v; want empty map", empty, s, err)
		}
	}
}

func FuzzLoadStatic(f *testing.F) {
	seed, err := os.ReadFile("testdata/static.yml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("workloads:\n  - name: x\n    inodes: [1]\n    containers: [3f4e2a1b9c0d]\n"))
	f.Add([]byte("workloads:\n  - name: x\n    netns: [a]\n  - name: y\n    netns: [a]\n"))
	f.Add([]byte("workloads: [{name: &a x, netns: [*a]}]\n"))
	f.Add([]byte("---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStatic(strings.NewReader(string(data)), "fuzz.yml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		// Every loaded name resolves to a named static identity.
		for n := range s.byName {
			if id, ok := s.Resolve(NetnsInfo{Name: n}); !ok || id.Name == "" || id.Kind != KindStatic {
				t.Fatalf("netns %q: %+v, %v", n, id, ok)
			}
		}
	})
}
