package detect

import (
	"net/netip"
	"testing"

	"github.com/minerguard/minerguard/intel"
)

func TestEvaluate(t *testing.T) {
	d := New(intel.Builtin(), ModeMonitor)
	pool := netip.MustParseAddr("10.77.0.2")
	for _, tc := range []struct {
		name  string
		facts Facts
		want  []Reason
	}{
		{"benign", Facts{Proto: 6, Dst: netip.MustParseAddr("10.1.1.1"), DstPort: 443, SNI: "api.example.com"}, nil},
		{"stratum", Facts{Proto: 6, Dst: pool, DstPort: 443, Mining: true}, []Reason{ReasonStratum}},
		{"pool dns", Facts{Proto: 17, Dst: pool, DstPort: 53, DNSQuery: "pool.supportxmr.com"}, []Reason{ReasonPoolDNS}},
		{"answered pool ip", Facts{Proto: 6, Dst: pool, DstPort: 3333, DstName: "xmr.2miners.com", Mining: true}, []Reason{ReasonStratum, ReasonPoolIP}},
		{"pool sni", Facts{Proto: 6, Dst: pool, DstPort: 443, SNI: "gulf.moneroocean.stream"}, []Reason{ReasonPoolSNI}},
		{"doh by ip", Facts{Proto: 6, Dst: netip.MustParseAddr("1.1.1.1"), DstPort: 443}, []Reason{ReasonDoH}},
		{"plain dns to resolver", Facts{Proto: 17, Dst: netip.MustParseAddr("8.8.8.8"), DstPort: 53, DNSQuery: "example.com"}, nil},
		{"doh by sni", Facts{Proto: 6, Dst: pool, DstPort: 443, SNI: "cloudflare-dns.com"}, []Reason{ReasonDoH}},
		{"dot", Facts{Proto: 6, Dst: pool, DstPort: 853}, []Reason{ReasonDoH}},
		{"bare tls", Facts{Proto: 6, Dst: pool, DstPort: 443, TLSBare: true}, []Reason{ReasonTLSBare}},
		{"behaviour", Facts{Proto: 6, Dst: pool, DstPort: 443, Behaviour: true}, []Reason{ReasonBehaviour}},
		{"sv2", Facts{Proto: 6, Dst: pool, DstPort: 34254, SV2: true}, []Reason{ReasonSV2Handshake}},
		{"learning: no profile verdict", Facts{Proto: 6, Dst: pool, DstPort: 8443, OutOfProfile: true, Unresolved: true}, nil},
		{"in profile", Facts{Proto: 6, Dst: pool, DstPort: 443, Profile: ProfileMonitoring}, nil},
		{"named out of profile", Facts{Proto: 6, Dst: pool, DstPort: 3443, Profile: ProfileMonitoring, OutOfProfile: true, ProfileDest: "new.example:3443/tcp"}, []Reason{ReasonNotInProfile}},
		{"unresolved out of profile", Facts{Proto: 6, Dst: pool, DstPort: 8443, Profile: ProfileEnforcing, OutOfProfile: true, Unresolved: true}, []Reason{ReasonNotInProfile, ReasonUnresolvedIP}},
	} {
		v := d.Evaluate(&tc.facts)
		if v.N != len(tc.want) {
			t.Errorf("%s: %d findings %+v, want %v", tc.name, v.N, v.Findings[:v.N], tc.want)
			continue
		}
		for _, r := range tc.want {
			if !v.Has(r) {
				t.Errorf("%s: missing %v in %+v", tc.name, r, v.Findings[:v.N])
			}
		}
		// Encrypted DNS alone is a record: no action on the flow.
		alerting := v.N > 0 && !(v.N == 1 && v.Has(ReasonDoH))
		if alerting != (v.Action == Flag) {
			t.Errorf("%s: action %v", tc.name, v.Action)
		}
	}
	if v := New(intel.Builtin(), ModeEnforce).Evaluate(&Facts{Mining: true}); v.Action != Drop {
		t.Errorf("enforce: %v", v.Action)
	}
}

func TestEnforceBlocks(t *testing.T) {
	d := New(intel.Builtin(), ModeEnforce)
	out := Facts{Proto: 6, Dst: netip.MustParseAddr("10.77.0.2"), DstPort: 8443, OutOfProfile: true}
	for _, tc := range []struct {
		name string
		f    Facts
		want Action
	}{
		{"monitored profile flags", withProfile(out, ProfileMonitoring), Flag},
		{"enforcing profile drops", withProfile(out, ProfileEnforcing), Drop},
		{"bare tls is only flagged", Facts{Proto: 6, DstPort: 443, TLSBare: true}, Flag},
		{"behaviour is only flagged", Facts{Proto: 6, DstPort: 443, Behaviour: true}, Flag},
		{"dot is only recorded", Facts{Proto: 6, Dst: netip.MustParseAddr("10.1.1.1"), DstPort: 853}, Allow},
		{"dot to a pool address still drops", Facts{Proto: 6, Dst: netip.MustParseAddr("10.1.1.1"), DstPort: 853, Mining: true}, Drop},
		{"dot out of an enforcing profile drops", withProfile(Facts{Proto: 6, Dst: netip.MustParseAddr("10.1.1.1"), DstPort: 853, OutOfProfile: true}, ProfileEnforcing), Drop},
		{"stratum drops", Facts{Mining: true}, Drop},
	} {
		if v := d.Evaluate(&tc.f); v.Action != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, v.Action, tc.want)
		}
	}
	if v := New(intel.Builtin(), ModeMonitor).Evaluate(&Facts{Mining: true}); v.Action != Flag {
		t.Errorf("monitor mode: %v", v.Action)
	}
}

// The flag-only detections drop in enforce mode only when the operator opts in, and only
// those: a set naming other reasons changes nothing for them; monitor mode never drops.
func TestDropAlsoOptIn(t *testing.T) {
	beh := Facts{Proto: 6, DstPort: 443, Behaviour: true}
	bare := Facts{Proto: 6, DstPort: 443, TLSBare: true}
	dot := Facts{Proto: 6, Dst: netip.MustParseAddr("10.1.1.1"), DstPort: 853}
	d := New(intel.Builtin(), ModeEnforce)
	if d.DropAlso() != 0 || d.Evaluate(&beh).Action != Flag {
		t.Fatal("behaviour must only flag by default")
	}
	d.SetDropAlso(Reasons(0).With(ReasonBehaviour).With(ReasonDoH).With(ReasonNotInProfile))
	if d.DropAlso() != Reasons(0).With(ReasonBehaviour) {
		t.Fatalf("kept %b: only opt-in reasons may be set", d.DropAlso())
	}
	if v := d.Evaluate(&beh); v.Action != Drop {
		t.Errorf("opted-in behaviour: %v", v.Action)
	}
	if v := d.Evaluate(&bare); v.Action != Flag {
		t.Errorf("bare tls not opted in: %v", v.Action)
	}
	if v := d.Evaluate(&dot); v.Action != Allow {
		t.Errorf("a record never drops: %v", v.Action)
	}
	out := withProfile(Facts{Proto: 6, Dst: netip.MustParseAddr("10.77.0.2"), DstPort: 8443, OutOfProfile: true}, ProfileMonitoring)
	if v := d.Evaluate(&out); v.Action != Flag {
		t.Errorf("a monitored profile's violation: %v", v.Action)
	}
	m := New(intel.Builtin(), ModeMonitor)
	m.SetDropAlso(Reasons(0).With(ReasonBehaviour))
	if v := m.Evaluate(&beh); v.Action != Flag {
		t.Errorf("monitor mode: %v", v.Action)
	}
	for id, want := range map[int]Reason{9400011: ReasonBehaviour, 9400007: ReasonTLSBare, 9400001: ReasonStratum} {
		if r, ok := ReasonOf(id); !ok || r != want {
			t.Errorf("ReasonOf(%d) = %v %v", id, r, ok)
		}
	}
	for _, id := range []int{0, 9400000, 9400012, 9399999, 1} {
		if r, ok := ReasonOf(id); ok {
			t.Errorf("ReasonOf(%d) = %v", id, r)
		}
	}
}

func withProfile(f Facts, s ProfileState) Facts { f.Profile = s; return f }

func TestReasonsStable(t *testing.T) {
	// Signature IDs are a contract with SIEM rules: they never move.
	want := map[Reason]int{ReasonStratum: 9400001, ReasonPoolDNS: 9400002, ReasonPoolSNI: 9400003, ReasonPoolIP: 9400004, ReasonDoH: 9400005, ReasonSV2Handshake: 9400006, ReasonTLSBare: 9400007, ReasonNotInProfile: 9400008, ReasonUnresolvedIP: 9400009, ReasonBehaviour: 9400011}
	for r, sid := range want {
		if r.SignatureID() != sid || r.String() == "unknown" {
			t.Errorf("%v: sid %d", r, r.SignatureID())
		}
	}
	var s Reasons
	s = s.With(ReasonDoH)
	if !s.Has(ReasonDoH) || s.Has(ReasonStratum) {
		t.Error("Reasons set broken")
	}
}

func TestEvaluateNoAlloc(t *testing.T) {
	d := New(intel.Builtin(), ModeMonitor)
	f := Facts{Proto: 6, Dst: netip.MustParseAddr("10.1.1.1"), DstPort: 3333, DstName: "a.b.example", SNI: "x.example"}
	if n := testing.AllocsPerRun(100, func() { d.Evaluate(&f) }); n != 0 {
		t.Fatalf("allocs %v", n)
	}
}
