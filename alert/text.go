package alert

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// MaxTextFlows bounds how many flows the text writer keeps for grouping; past it, the rest
// are printed as they come so memory stays bounded.
const MaxTextFlows = 100000

// TextWriter prints alerts as a table grouped by flow: one row per flow with every reason it
// raised, written when Flush is called.
type TextWriter struct {
	w     io.Writer
	flows map[uint64]*textFlow
	order []*textFlow
}

type textFlow struct {
	first   *Event
	alerts  int
	reasons []string
	details []string
	variant string
	pool    string
}

// NewTextWriter writes the table to w on Flush.
func NewTextWriter(w io.Writer) *TextWriter {
	return &TextWriter{w: w, flows: map[uint64]*textFlow{}}
}

// Write adds e to its flow's row (stats, flow, dns and tls records are for JSON only: the
// table is of findings).
func (t *TextWriter) Write(e *Event) error {
	if e.Stats != nil || e.IsRecord() {
		return nil
	}
	f := t.flows[e.FlowID]
	if f == nil {
		if len(t.order) >= MaxTextFlows {
			return t.print([]*textFlow{newTextFlow(e)}, false)
		}
		f = newTextFlow(e)
		t.flows[e.FlowID] = f
		t.order = append(t.order, f)
		return nil
	}
	f.add(e)
	return nil
}

func newTextFlow(e *Event) *textFlow {
	c := *e
	f := &textFlow{first: &c}
	f.add(e)
	return f
}

func (f *textFlow) add(e *Event) {
	if e.EventType == "anomaly" {
		f.reasons = append(f.reasons, e.MG.Detector+"(record)")
	} else {
		f.alerts++
		f.reasons = append(f.reasons, e.MG.Detector)
	}
	if f.variant == "" {
		f.variant = e.MG.Variant
	}
	if f.pool == "" {
		f.pool = e.MG.Pool
	}
	var d []string
	if e.Stratum != nil {
		d = append(d, "method="+e.Stratum.Method+" ("+e.Stratum.Side+")")
		if e.Stratum.Agent != "" {
			d = append(d, "agent="+quote(e.Stratum.Agent))
		}
	}
	if e.DNS != nil {
		d = append(d, "query="+e.DNS.Query)
	}
	if e.TLS != nil {
		if e.TLS.SNI != "" {
			d = append(d, "sni="+e.TLS.SNI)
		}
		if e.TLS.JA4 != "" {
			d = append(d, "ja4="+e.TLS.JA4)
		}
	}
	if e.MG.Tunnel != "" {
		d = append(d, "via "+e.MG.Tunnel+" "+e.MG.Target)
	}
	if e.MG.Evasion != "" {
		d = append(d, "evasion="+e.MG.Evasion)
	}
	if b := e.MG.Behaviour; b != nil {
		d = append(d, fmt.Sprintf("behaviour score=%.2f>=%.2f", b.Score, b.Threshold))
	}
	if p := e.MG.Profile; p != nil {
		d = append(d, "not in "+p.State+" profile: "+p.Destination)
	}
	if w := e.MG.Workload; w != nil && w.Identity != "" {
		d = append(d, "workload="+w.Identity)
	}
	for _, s := range d {
		if !contains(f.details, s) {
			f.details = append(f.details, s)
		}
	}
}

func quote(s string) string {
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return fmt.Sprintf("%q", s)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Flush prints the table: one row per flow, in the order of their first alerts (the order
// of the JSON lines), then how many alerts on how many flows (the summary's count).
func (t *TextWriter) Flush() error {
	err := t.print(t.order, true)
	t.order, t.flows = nil, map[uint64]*textFlow{}
	return err
}

func (t *TextWriter) print(flows []*textFlow, header bool) error {
	if len(flows) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(t.w, 0, 0, 2, ' ', 0)
	files, alerts := false, 0
	for _, f := range flows {
		files = files || f.first.MG.Capture != ""
		alerts += f.alerts
	}
	if header {
		if files {
			fmt.Fprint(tw, "FILE\t")
		}
		fmt.Fprintln(tw, "TIME\tPROTO\tSOURCE\tDESTINATION\tVARIANT\tREASONS\tPOOL\tDETAILS")
	}
	for _, f := range flows {
		e := f.first
		if files {
			name := "-"
			if e.MG.Capture != "" {
				name = filepath.Base(e.MG.Capture)
			}
			fmt.Fprintf(tw, "%s\t", name)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			e.Timestamp.UTC().Format("2006-01-02 15:04:05.000"), ProtoName(e.Proto), e.Src, e.Dest,
			dash(f.variant), strings.Join(f.reasons, ","), dash(f.pool), strings.Join(f.details, " "))
	}
	if err := tw.Flush(); err != nil || !header {
		return err
	}
	_, err := fmt.Fprintf(t.w, "%s on %s\n", plural(alerts, "alert"), plural(len(flows), "flow"))
	return err
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
