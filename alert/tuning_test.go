package alert

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func tuning(t *testing.T, rules string) *Tuning {
	t.Helper()
	tu, err := ParseTuning("threshold.config", strings.NewReader(rules))
	if err != nil {
		t.Fatal(err)
	}
	return tu
}

func tev(sid int, src, dst, wl string, at time.Duration) *Event {
	e := &Event{SignatureID: sid, Src: netip.MustParseAddrPort(src + ":40000"), Dest: netip.MustParseAddrPort(dst + ":3333"),
		Timestamp: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC).Add(at)}
	if wl != "" {
		e.MG.Workload = &Workload{Identity: wl}
	}
	return e
}

func TestTuningSuppress(t *testing.T) {
	tu := tuning(t, `# Suricata's syntax, plus track by_workload
suppress gen_id 1, sig_id 9400009
suppress gen_id 1, sig_id 9400004, track by_dst, ip [198.51.100.0/24, 2001:db8::7]
suppress gen_id 1, sig_id 9400008, track by_workload, workload k8s/monitoring/*
suppress gen_id 0, sig_id 0, track by_src, ip 10.9.9.9
`)
	for _, tc := range []struct {
		e    *Event
		want Verdict
	}{
		{tev(9400009, "10.0.0.1", "192.0.2.1", "", 0), Suppressed},
		{tev(9400001, "10.0.0.1", "192.0.2.1", "", 0), Pass},
		{tev(9400004, "10.0.0.1", "198.51.100.20", "", 0), Suppressed},
		{tev(9400004, "10.0.0.1", "192.0.2.1", "", 0), Pass},
		{tev(9400004, "198.51.100.20", "192.0.2.1", "", 0), Pass}, // by_dst: the source does not count
		{tev(9400008, "10.0.0.1", "192.0.2.1", "k8s/monitoring/prometheus", 0), Suppressed},
		{tev(9400008, "10.0.0.1", "192.0.2.1", "k8s/shop/web", 0), Pass},
		{tev(9400001, "10.9.9.9", "192.0.2.1", "", 0), Suppressed}, // sig_id 0: every signature
	} {
		if got := tu.Judge(tc.e); got != tc.want {
			t.Errorf("sid %d %v -> %v (%s): %v, want %v", tc.e.SignatureID, tc.e.Src, tc.e.Dest, workloadOf(tc.e), got, tc.want)
		}
	}
}

func workloadOf(e *Event) string {
	if e.MG.Workload == nil {
		return ""
	}
	return e.MG.Workload.Identity
}

func TestTuningThresholds(t *testing.T) {
	tu := tuning(t, `threshold gen_id 1, sig_id 9400008, type limit, track by_workload, count 2, seconds 60
event_filter gen_id 1, sig_id 9400001, type threshold, track by_src, count 3, seconds 60
threshold gen_id 1, sig_id 9400004, type both, track by_dst, count 2, seconds 60
`)
	run := func(sid int, src, wl string, ats ...time.Duration) string {
		var b strings.Builder
		for _, at := range ats {
			if tu.Judge(tev(sid, src, "192.0.2.1", wl, at)) == Pass {
				b.WriteByte('y')
			} else {
				b.WriteByte('n')
			}
		}
		return b.String()
	}
	s := time.Second
	// limit: 2 a minute per workload, each workload on its own; a new window after 60 s.
	if got := run(9400008, "10.0.0.1", "a", 0, s, 2*s, 3*s, 61*s); got != "yynny" {
		t.Errorf("limit: %s", got)
	}
	if got := run(9400008, "10.0.0.1", "b", 4*s); got != "y" {
		t.Errorf("limit, another workload: %s", got)
	}
	// threshold: every 3rd per source.
	if got := run(9400001, "10.0.0.1", "", 0, s, 2*s, 3*s, 4*s, 5*s); got != "nnynny" {
		t.Errorf("threshold: %s", got)
	}
	// both: once a window, at the 2nd.
	if got := run(9400004, "10.0.0.1", "", 0, s, 2*s, 3*s, 70*s, 71*s); got != "nynnny" {
		t.Errorf("both: %s", got)
	}
	// Untouched signatures pass.
	if got := run(9400002, "10.0.0.1", "", 0, 0, 0); got != "yyy" {
		t.Errorf("other signature: %s", got)
	}
}

// A flood of distinct keys cannot grow the state past its cap.
func TestTuningBounded(t *testing.T) {
	tu := tuning(t, "threshold gen_id 1, sig_id 0, type limit, track by_src, count 1, seconds 60\n")
	for i := 0; i < MaxTuningKeys+5000; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		tu.Judge(tev(9400001, a.String(), "192.0.2.1", "", 0))
	}
	if n := len(tu.state); n > MaxTuningKeys+1 {
		t.Errorf("%d windows kept", n)
	}
}

func TestTuningErrors(t *testing.T) {
	for in, want := range map[string]string{
		"suppress gen_id 1":                                                         "threshold.config:2: gen_id and sig_id are required",
		"limit gen_id 1, sig_id 1":                                                  `threshold.config:2: "limit": want suppress`,
		"suppress gen_id 1, sig_id 1, track by_src, ip 10.0.0.":                     `ip "10.0.0.": not an address or prefix`,
		"suppress gen_id 1, sig_id 1, ip 10.0.0.1":                                  "needs track by_src, by_dst or by_either",
		"threshold gen_id 1, sig_id 1, type limit, track by_src":                    "threshold needs type, track, count and seconds",
		"threshold gen_id 1, sig_id 1, type lots, track by_src, count 1, seconds 1": `type "lots": want limit, threshold or both`,
		"suppress gen_id 1, sig_id 1, colour red":                                   `unknown option "colour"`,
		"suppress gen_id 3, sig_id 1":                                               "gen_id 3",
		"rate_filter gen_id 1, sig_id 1":                                            "use threshold ... type limit",
	} {
		_, err := ParseTuning("threshold.config", strings.NewReader("# first line\n"+in+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}

func TestTuningSink(t *testing.T) {
	var got []int
	s := NewTuningSink(nil, sinkFunc(func(e *Event) { got = append(got, e.SignatureID) }))
	s.Alert(tev(9400009, "10.0.0.1", "192.0.2.1", "", 0))
	s.Set(tuning(t, "suppress gen_id 1, sig_id 9400009\n"))
	s.Alert(tev(9400009, "10.0.0.1", "192.0.2.1", "", 0))
	s.Alert(tev(9400001, "10.0.0.1", "192.0.2.1", "", 0))
	if sup, _ := s.Stopped(); len(got) != 2 || got[1] != 9400001 || sup != 1 {
		t.Errorf("passed %v, suppressed %d", got, sup)
	}
}

type sinkFunc func(*Event)

func (f sinkFunc) Alert(e *Event) { f(e) }
