package engine

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/intel"
)

// FuzzSV2 drives the Stratum V2 detector through the engine: a TCP session whose first client
// and server payloads are arbitrary (plaintext SV2 frames, Noise-sized flights, noise), then
// more client bytes. The stratum-v2 alert is raised exactly when the first flights are 64 and
// 170 bytes, at most once, and every alert encodes as one JSON line.
func FuzzSV2(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0x8a}, 64), bytes.Repeat([]byte{0x5c}, 170), []byte("more"))
	f.Add(bytes.Repeat([]byte{0x8a}, 65), bytes.Repeat([]byte{0x5c}, 170), []byte{})
	// A plaintext SetupConnection (protocol 0, versions 2..2, vendor "v") and its Success.
	setup := []byte{0, 0, 0, 20, 0, 0, 0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'v', 0, 0, 0, 0, 0, 0}
	f.Add(setup, []byte{0, 0, 1, 6, 0, 0, 2, 0, 0, 0, 0, 0}, []byte{})
	set := intel.Builtin() // parsed once: read-only afterwards
	f.Fuzz(func(t *testing.T, c, s, more []byte) {
		if len(c) == 0 || len(s) == 0 || len(c) > 1400 || len(s) > 1400 || len(more) > 1400 {
			return
		}
		col := &collect{}
		e := New(Options{Detector: detect.New(set, detect.ModeMonitor), Sink: col})
		x := newSession(t, client, endpoint{"10.9.9.9", 34254})
		x.client(string(c), 1400)
		x.server(string(s))
		if len(more) > 0 {
			x.client(string(more), 1400)
		}
		feed(e, x.frames)
		e.Flush()
		want := len(c) == 64 && len(s) == 170
		n := 0
		var out bytes.Buffer
		w := alert.NewJSONWriter(&out)
		for i := range col.events {
			if col.events[i].MG.Detector == "stratum-v2" {
				n++
			}
			if err := w.Write(&col.events[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if (n == 1) != want || n > 1 {
			t.Fatalf("first flights %d/%d: %d stratum-v2 alerts", len(c), len(s), n)
		}
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if l != "" && !json.Valid([]byte(l)) {
				t.Fatalf("alert line is not JSON: %q", l)
			}
		}
	})
}
