package sensor

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/profile"
)

// Bad requests on the control socket get a status and a message, and change nothing: unknown
// workloads, bad states, hostile or oversized imports, and blocks on a sensor that does not
// enforce.
func TestControlRejectsBadRequests(t *testing.T) {
	b := profile.NewMemory(profile.Config{})
	b.Learn("shop/web", profile.Observation{Dest: profile.Dest{Port: 443, Proto: profile.TCP}, IP: netip.MustParseAddr("192.0.2.1")}, time.Now())
	s := &Sensor{book: b, log: slog.New(slog.NewTextHandler(io.Discard, nil)), mode: "monitor"}
	defer func(n int64) { maxImportBytes = n }(maxImportBytes)
	maxImportBytes = 4 << 10
	h := s.controlHandler()
	do := func(method, target, body string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
		return rec.Code, rec.Body.String()
	}
	for _, c := range []struct {
		method, target, body string
		code                 int
		msg                  string
	}{
		{"POST", ctlApprove + "?workload=nobody&to=enforcing", "", http.StatusNotFound, "no profile"},
		{"POST", ctlApprove + "?workload=shop/web&to=learning", "", http.StatusBadRequest, "monitoring or enforcing"},
		{"POST", ctlApprove + "?workload=shop/web&to=bogus", "", http.StatusBadRequest, "unknown profile state"},
		{"POST", ctlReset + "?workload=nobody", "", http.StatusNotFound, "no profile"},
		{"POST", ctlProfiles, `{"profiles":[{"workload":"x","state":"enforcing","entries":[{"dest":"not a dest"}]}]}`, http.StatusBadRequest, ""},
		{"POST", ctlProfiles, strings.Repeat("[", 3<<10), http.StatusBadRequest, ""},
		{"POST", ctlProfiles, `{"profiles":[` + strings.Repeat(" ", 4<<10) + `]}`, http.StatusRequestEntityTooLarge, "larger than 4096 bytes"},
		{"GET", ctlBlocks, "", http.StatusConflict, "does not enforce (mode monitor)"},
		{"POST", ctlClear + "?workload=shop/web", "", http.StatusConflict, "does not enforce"},
		{"DELETE", ctlProfiles, "", http.StatusMethodNotAllowed, ""},
	} {
		code, msg := do(c.method, c.target, c.body)
		if code != c.code || !strings.Contains(msg, c.msg) {
			t.Errorf("%s %s: %d %q, want %d containing %q", c.method, c.target, code, msg, c.code, c.msg)
		}
	}
	if p, _ := b.Get("shop/web"); p.State != profile.Learning || len(p.Entries) != 1 {
		t.Errorf("the profile changed: %v, %d entries", p.State, len(p.Entries))
	}
	if code, _ := do("POST", ctlApprove+"?workload=shop/web&to=monitoring", ""); code != http.StatusOK {
		t.Errorf("a good approve: %d", code)
	}
	if p, _ := b.Get("shop/web"); p.State != profile.Monitoring {
		t.Errorf("after approve: %v", p.State)
	}
	// Profiles disabled: the profile endpoints say so.
	off := (&Sensor{log: s.log, mode: "monitor"}).controlHandler()
	rec := httptest.NewRecorder()
	off.ServeHTTP(rec, httptest.NewRequest("GET", ctlProfiles, nil))
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "profiles are disabled") {
		t.Errorf("profiles disabled: %d %q", rec.Code, rec.Body.String())
	}
}
