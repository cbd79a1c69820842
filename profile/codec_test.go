package profile

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleProfiles() []Profile {
	return []Profile{
		{Workload: "k8s/default/Deployment/web", State: Monitoring, Since: t0, LastNew: t0.Add(time.Minute), Flows: 42,
			Image: "registry.example/web:1", Entries: []Entry{
				{Dest: Dest{Addr: netip.MustParsePrefix("10.1.0.0/16"), Port: 5432, Proto: TCP}, First: t0},
				{Dest: Dest{Addr: netip.MustParsePrefix("2001:db8::53/128"), Port: 53, Proto: UDP, App: "dns"}, First: t0},
				{Dest: Dest{Name: "api.example", Port: 443, Proto: TCP, App: "tls"}, IPs: []netip.Addr{ip("192.0.2.1"), ip("2001:db8::1")}, First: t0},
			},
			Candidates: []Entry{{Dest: Dest{Name: "maybe.example", Port: 80, Proto: TCP}, Seen: []string{"pod-a@n1"}, First: t0}},
			Poisoned:   []string{"203.0.113.0/24", "pool.example"},
		},
		{Workload: "netns/empty", State: Learning, Since: t0},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := sampleProfiles()
	sortEntries(in[0].Entries)
	for _, format := range []string{"yaml", "json"} {
		var buf bytes.Buffer
		if err := Encode(&buf, in, format); err != nil {
			t.Fatal(err)
		}
		got, err := Decode(&buf)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if !reflect.DeepEqual(got, in) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v", format, got, in)
		}
	}
	var buf bytes.Buffer
	if err := Encode(&buf, in, "text"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"k8s/default/Deployment/web", "monitoring", "api.example:443/tcp", "192.0.2.1,2001:db8::1",
		"[2001:db8::53]:53/udp", "10.1.0.0/16:5432/tcp", "(candidate) maybe.example:80/tcp", "(poisoned) pool.example"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
	if err := Encode(&buf, in, "xml"); err == nil {
		t.Error("xml accepted")
	}
}

// An imported profile goes through the Book's caps and checks.
func TestPutChecks(t *testing.T) {
	b := NewMemory(Config{MaxEntries: 2, MaxIPsPerName: 1})
	in := sampleProfiles()
	if err := b.Put(in[0]); err == nil || !strings.Contains(err.Error(), "more than max-entries 2") {
		t.Errorf("Put over the entry cap: %v", err)
	}
	in[0].Entries = in[0].Entries[2:]
	if err := b.Put(in[0]); err == nil || !strings.Contains(err.Error(), "more than max-ips-per-name 1") {
		t.Errorf("Put over the address cap: %v", err)
	}
	for _, p := range []Profile{
		{Workload: "", State: Learning},
		{Workload: "w"},
		{Workload: "w", State: Learning, Entries: []Entry{{Dest: Dest{Name: "a.example"}}}}, // no transport
		{Workload: "w", State: Learning, Entries: []Entry{{Dest: Dest{Name: "a.example", Proto: TCP}}, {Dest: Dest{Name: "A.example.", Proto: TCP}}}},
		{Workload: "w", State: Learning, Poisoned: []string{"no way"}},
	} {
		if err := b.Put(p); err == nil {
			t.Errorf("Put(%+v) accepted", p)
		}
	}
	if len(b.List()) != 0 {
		t.Errorf("refused imports left profiles: %v", b.List())
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "not a profiles file"},
		{"other kind", "kind: NetworkPolicy\nprofiles: []\n", "not a profiles file"},
		{"unknown field", "kind: MinerguardProfiles\nprofiles:\n- workload: w\n  state: learning\n  colour: red\n", "field colour not found"},
		{"unknown field json", `{"kind":"MinerguardProfiles","profiles":[{"workload":"w","state":"learning","x":1}]}`, "unknown field"},
		{"json trailing", `{"kind":"MinerguardProfiles","profiles":[]} {}`, "data after"},
		{"bad state", "kind: MinerguardProfiles\nprofiles:\n- workload: w\n  state: asleep\n", "unknown profile state"},
		{"no workload", "kind: MinerguardProfiles\nprofiles:\n- state: learning\n", "must be 1 to"},
		{"dup", "kind: MinerguardProfiles\nprofiles:\n- {workload: w, state: learning}\n- {workload: w, state: learning}\n", "appears twice"},
		{"bad name", "kind: MinerguardProfiles\nprofiles:\n- workload: w\n  state: learning\n  entries:\n  - {name: 'a b', port: 1, proto: tcp}\n", "entry 1: name \"a b\" is not a domain"},
		{"both", "kind: MinerguardProfiles\nprofiles:\n- workload: w\n  state: learning\n  entries:\n  - {name: a.example, addr: 10.0.0.1, port: 1, proto: tcp}\n", "both name and addr"},
		{"bad addr", "kind: MinerguardProfiles\nprofiles:\n- workload: w\n  state: learning\n  entries:\n  - {addr: 10.0.0.300, port: 1, proto: tcp}\n", "not an address or CIDR"},
		{"bad port", "kind: MinerguardProfiles\nprofiles:\n- workload: w\n  state: learning\n  entries:\n  - {addr: 10.0.0.1, port: 70000, proto: tcp}\n", "cannot unmarshal"},
		{"bad proto", "kind: MinerguardProfiles\nprofiles:\n- workload: w\n  state: learning\n  entries:\n  - {addr: 10.0.0.1, port: 1, proto: sctpx}\n", "unknown transport"},
		{"ips on addr", "kind: MinerguardProfiles\nprofiles:\n- workload: w\n  state: learning\n  entries:\n  - {addr: 10.0.0.1, port: 1, proto: tcp, ips: [10.0.0.2]}\n", "name entries only"},
		{"bad time", "kind: MinerguardProfiles\nprofiles:\n- workload: w\n  state: learning\n  since: yesterday\n", "not an RFC 3339 time"},
		{"alias", "kind: MinerguardProfiles\nx: &a [1]\nprofiles: *a\n", "anchors and aliases are not allowed"},
		{"two docs", "kind: MinerguardProfiles\nprofiles: []\n---\nkind: MinerguardProfiles\n", "more than one document"},
		{"deep", "kind: MinerguardProfiles\nprofiles: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n", "nested deeper"},
		{"yaml too big", "kind: MinerguardProfiles\n#" + strings.Repeat("x", MaxDecodeYAML) + "\n", "larger than 4 MiB of YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	a := sampleProfiles()[0]
	b := a
	b.Entries = append([]Entry{}, a.Entries[1:]...)
	b.Entries[0].IPs = nil // a different address set is not a difference
	b.Entries = append(b.Entries, Entry{Dest: Dest{Name: "new.example", Port: 443, Proto: TCP}})
	added, removed := Diff(a, b)
	if len(added) != 1 || added[0].Name != "new.example" || len(removed) != 1 || removed[0].String() != a.Entries[0].String() {
		t.Errorf("Diff: added %v, removed %v", added, removed)
	}
	if added, removed := Diff(a, a); added != nil || removed != nil {
		t.Errorf("Diff(a, a): %v %v", added, removed)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.yaml")
	for _, data := range []string{"first\n", "second\n"} {
		if err := WriteFileAtomic(path, []byte(data)); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); string(got) != data {
			t.Errorf("content %q, want %q", got, data)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x"), []byte("x")); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	Encode(&buf, sampleProfiles(), "yaml")
	f.Add(buf.Bytes())
	buf.Reset()
	Encode(&buf, sampleProfiles(), "json")
	f.Add(buf.Bytes())
	f.Add([]byte("kind: MinerguardProfiles\nprofiles:\n- {workload: w, state: learning, entries: [{name: a.example, port: 1, proto: udp, ips: ['::ffff:1.2.3.4']}]}\n"))
	f.Add([]byte("kind: MinerguardProfiles\na: &a [x, x]\nb: &b [*a, *a]\nprofiles: [*b]\n"))
	f.Add([]byte(`{"kind":"MinerguardProfiles","profiles":[{"workload":"w","state":"enforcing","poisoned":["10.0.0.0/8","Pool.Example."]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		// What decodes must import and re-encode to the same thing.
		b := NewMemory(Config{MaxEntries: maxDecodeItems, MaxIPsPerName: maxDecodeItems})
		for _, p := range ps {
			if err := b.Put(p); err != nil {
				return // duplicates after normalisation and the like are refused, not fatal
			}
		}
		var out bytes.Buffer
		if err := Encode(&out, b.Profiles(), "json"); err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		again, err := Decode(&out)
		if err != nil {
			t.Fatalf("re-decoding our own output: %v\n%s", err, out.Bytes())
		}
		if len(again) != len(ps) {
			t.Fatalf("%d profiles after a round trip, want %d", len(again), len(ps))
		}
	})
}
