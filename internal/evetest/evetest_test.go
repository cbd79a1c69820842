package evetest

import (
	"strings"
	"testing"
)

// The validator is real: the schema refuses what Suricata would never write.
func TestRefuses(t *testing.T) {
	ok := `{"timestamp":"2026-11-25T12:00:00.123456+0000","event_type":"alert","src_ip":"10.0.0.1","alert":{"signature_id":1,"metadata":{"mitre_technique_id":["T1496"]}}}`
	if err := Line([]byte(ok)); err != nil {
		t.Fatalf("valid line refused: %v", err)
	}
	for name, bad := range map[string]string{
		"unknown top-level key": `{"timestamp":"2026-11-25T12:00:00.1+0000","event_type":"alert","minerguard":{}}`,
		"dns.query a string":    `{"timestamp":"2026-11-25T12:00:00.1+0000","event_type":"alert","dns":{"version":2,"query":"pool.example"}}`,
		"dns without version":   `{"timestamp":"2026-11-25T12:00:00.1+0000","event_type":"alert","dns":{"queries":[{"rrname":"a"}]}}`,
		"tls.alpn":              `{"timestamp":"2026-11-25T12:00:00.1+0000","event_type":"alert","tls":{"alpn":["h2"]}}`,
		"bad timestamp":         `{"timestamp":"2026-11-25 12:00:00","event_type":"alert"}`,
		"flow_id a string":      `{"timestamp":"2026-11-25T12:00:00.1+0000","event_type":"alert","flow_id":"7"}`,
		"metadata not an array": `{"timestamp":"2026-11-25T12:00:00.1+0000","event_type":"alert","alert":{"metadata":{"tag":"x"}}}`,
		"not JSON":              `{"timestamp":`,
	} {
		if err := Line([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ft := &fakeT{TB: t}
	if n := Lines(ft, "x", []byte(ok+"\n\n"+strings.Replace(ok, `"alert":{`, `"stratum":{},"alert":{`, 1)+"\n")); n != 2 || ft.errs != 1 {
		t.Errorf("Lines: %d lines, %d errors; want 2, 1", n, ft.errs)
	}
}

type fakeT struct {
	testing.TB
	errs int
}

func (f *fakeT) Errorf(string, ...any) { f.errs++ }
func (f *fakeT) Helper()               {}
