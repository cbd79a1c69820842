package alert

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Tuning applies a threshold file to alerts before they are written, as Suricata's
// threshold.config does: `suppress` drops the alerts of a signature (all, or only those of
// an address, prefix or workload), `threshold`/`event_filter` keeps at most count alerts per
// seconds (type limit), the count-th (type threshold) or one after count (type both), tracked
// by source, destination, both, rule or workload. Windows run on the alerts' own time, so a
// replay gives the same result at any speed. State is bounded (MaxTuningKeys).
type Tuning struct {
	mu    sync.Mutex
	rules []tuneRule
	state map[tuneKey]*tuneWindow
}

// Verdict is what a Tuning decided for an alert.
type Verdict uint8

const (
	Pass        Verdict = iota
	Suppressed          // a suppress rule matched
	Thresholded         // over a threshold's count in its window
)

// MaxTuningKeys bounds the threshold windows kept; past it, new keys share one window.
const MaxTuningKeys = 100000

type tuneRule struct {
	suppress bool
	sid      int // 0: every signature
	track    string
	nets     []netip.Prefix // suppress: only these addresses (by track)
	workload string         // only alerts of a workload matching this path.Match pattern
	typ      string         // limit | threshold | both
	count    uint64
	window   time.Duration
	line     int
}

type tuneKey struct {
	line   int
	sid    int
	a, b   netip.Addr
	worker string
}

type tuneWindow struct {
	start time.Time
	n     uint64
}

// LoadTuning reads a threshold file.
func LoadTuning(file string) (*Tuning, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseTuning(file, f)
}

// ParseTuning parses threshold rules; name prefixes the errors, which give the line.
func ParseTuning(name string, r io.Reader) (*Tuning, error) {
	t := &Tuning{state: map[tuneKey]*tuneWindow{}}
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		rule, err := parseTuneRule(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, ln, err)
		}
		rule.line = ln
		t.rules = append(t.rules, rule)
	}
	return t, sc.Err()
}

func parseTuneRule(line string) (tuneRule, error) {
	kw, rest, _ := strings.Cut(line, " ")
	var r tuneRule
	switch kw {
	case "suppress":
		r.suppress = true
	case "threshold", "event_filter", "rate_filter":
		if kw == "rate_filter" {
			return r, fmt.Errorf("rate_filter changes rule actions, which minerguard has no rules for: use threshold ... type limit")
		}
	default:
		return r, fmt.Errorf("%q: want suppress, threshold or event_filter", kw)
	}
	seen := map[string]bool{}
	gid := -1
	for _, opt := range splitOpts(rest) {
		k, v, _ := strings.Cut(strings.TrimSpace(opt), " ")
		v = strings.TrimSpace(v)
		if seen[k] {
			return r, fmt.Errorf("%s given twice", k)
		}
		seen[k] = true
		var err error
		switch k {
		case "gen_id":
			gid, err = strconv.Atoi(v)
		case "sig_id":
			r.sid, err = strconv.Atoi(v)
		case "track":
			r.track = v
			switch v {
			case "by_src", "by_dst", "by_either", "by_both", "by_rule", "by_workload":
			default:
				err = fmt.Errorf("want by_src, by_dst, by_either, by_both, by_rule or by_workload")
			}
		case "ip":
			for _, a := range strings.Split(strings.Trim(v, "[]"), ",") {
				a = strings.TrimSpace(a)
				p, perr := netip.ParsePrefix(a)
				if perr != nil {
					ad, aerr := netip.ParseAddr(a)
					if aerr != nil {
						return r, fmt.Errorf("ip %q: not an address or prefix", a)
					}
					p = netip.PrefixFrom(ad, ad.BitLen())
				}
				r.nets = append(r.nets, p.Masked())
			}
		case "workload":
			r.workload = v
			_, err = path.Match(v, "")
		case "type":
			r.typ = v
			if v != "limit" && v != "threshold" && v != "both" {
				err = fmt.Errorf("want limit, threshold or both")
			}
		case "count":
			r.count, err = strconv.ParseUint(v, 10, 32)
		case "seconds":
			var s uint64
			s, err = strconv.ParseUint(v, 10, 32)
			r.window = time.Duration(s) * time.Second
		default:
			return r, fmt.Errorf("unknown option %q (want gen_id, sig_id, track, ip, workload, type, count, seconds)", k)
		}
		if err != nil {
			return r, fmt.Errorf("%s %q: %v", k, v, err)
		}
	}
	switch {
	case gid < 0 || !seen["sig_id"]:
		return r, fmt.Errorf("gen_id and sig_id are required (gen_id 1, or 0 with sig_id 0 for every signature)")
	case gid != 1 && gid != 0:
		return r, fmt.Errorf("gen_id %d: minerguard's alerts are gen_id 1", gid)
	case r.suppress && len(r.nets) > 0 && r.track != "by_src" && r.track != "by_dst" && r.track != "by_either":
		return r, fmt.Errorf("suppress with ip needs track by_src, by_dst or by_either")
	case r.suppress && r.track == "by_workload" && r.workload == "":
		return r, fmt.Errorf("suppress with track by_workload needs workload PATTERN")
	case !r.suppress && (r.typ == "" || r.track == "" || !seen["count"] || !seen["seconds"]):
		return r, fmt.Errorf("threshold needs type, track, count and seconds")
	case !r.suppress && (r.count == 0 || r.window == 0):
		return r, fmt.Errorf("count and seconds must be at least 1")
	case !r.suppress && len(r.nets) > 0:
		return r, fmt.Errorf("ip is for suppress; a threshold tracks addresses with track")
	}
	return r, nil
}

// splitOpts splits on commas outside brackets (ip [a, b]).
func splitOpts(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '[':
			depth++
		case ']':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// Rules is the number of rules loaded.
func (t *Tuning) Rules() int { return len(t.rules) }

// Judge says whether e is to be written (Pass) or why not. A nil Tuning passes everything.
func (t *Tuning) Judge(e *Event) Verdict {
	if t == nil || len(t.rules) == 0 {
		return Pass
	}
	wl := ""
	if e.MG.Workload != nil {
		wl = e.MG.Workload.Identity
	}
	src, dst := e.Src.Addr().Unmap(), e.Dest.Addr().Unmap()
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.rules {
		r := &t.rules[i]
		if !r.suppress || (r.sid != 0 && r.sid != e.SignatureID) || !r.workloadMatch(wl) {
			continue
		}
		if len(r.nets) == 0 || (r.track != "by_dst" && inNets(r.nets, src)) || (r.track != "by_src" && inNets(r.nets, dst)) {
			return Suppressed
		}
	}
	for i := range t.rules {
		r := &t.rules[i]
		if r.suppress || (r.sid != 0 && r.sid != e.SignatureID) || !r.workloadMatch(wl) {
			continue
		}
		// The first threshold that applies decides, as one threshold per signature in Suricata.
		k := tuneKey{line: r.line}
		switch r.track {
		case "by_src":
			k.a = src
		case "by_dst":
			k.a = dst
		case "by_both", "by_either":
			k.a, k.b = src, dst
		case "by_workload":
			k.worker = wl
		}
		if r.sid == 0 {
			k.sid = e.SignatureID
		}
		if !t.pass(r, k, e.Timestamp) {
			return Thresholded
		}
		return Pass
	}
	return Pass
}

func (r *tuneRule) workloadMatch(wl string) bool {
	if r.workload == "" {
		return true
	}
	ok, _ := path.Match(r.workload, wl)
	return ok
}

func inNets(nets []netip.Prefix, a netip.Addr) bool {
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// pass counts one alert in k's window; t.mu held.
func (t *Tuning) pass(r *tuneRule, k tuneKey, now time.Time) bool {
	w := t.state[k]
	if w == nil {
		if len(t.state) >= MaxTuningKeys {
			k = tuneKey{line: r.line, worker: "\x00overflow"}
			w = t.state[k]
		}
		if w == nil {
			w = &tuneWindow{start: now}
			t.state[k] = w
		}
	}
	if now.Sub(w.start) >= r.window || now.Before(w.start) {
		w.start, w.n = now, 0
	}
	w.n++
	switch r.typ {
	case "limit":
		return w.n <= r.count
	case "threshold":
		if w.n >= r.count {
			w.start, w.n = now, 0 // every count-th alert
			return true
		}
		return false
	default: // both: once per window, after count
		return w.n == r.count
	}
}

// TuningSink passes alerts through the current Tuning (swapped whole on reload) and counts
// those it stops.
type TuningSink struct {
	t                       atomic.Pointer[Tuning]
	next                    interface{ Alert(*Event) }
	suppressed, thresholded atomic.Uint64
}

// NewTuningSink sends the alerts t allows to next; t may be nil (everything passes).
func NewTuningSink(t *Tuning, next interface{ Alert(*Event) }) *TuningSink {
	s := &TuningSink{next: next}
	s.t.Store(t)
	return s
}

// Set replaces the tuning (SIGHUP); its windows start afresh.
func (s *TuningSink) Set(t *Tuning) { s.t.Store(t) }

// Alert passes e on unless the current tuning stops it.
func (s *TuningSink) Alert(e *Event) {
	switch s.t.Load().Judge(e) {
	case Pass:
		s.next.Alert(e)
	case Suppressed:
		s.suppressed.Add(1)
	case Thresholded:
		s.thresholded.Add(1)
	}
}

// Stopped returns how many alerts were suppressed and thresholded.
func (s *TuningSink) Stopped() (suppressed, thresholded uint64) {
	return s.suppressed.Load(), s.thresholded.Load()
}
