// Command train fits the behaviour detector's logistic model on labelled captures and prints
// it as Go source (detect/behaviour/model.go). A capture's label is its name: files whose
// base name starts with "xmrig-" or "cpuminer-" are mining sessions, every other file is
// benign. Each TLS flow that reaches the checkpoint is one sample, with the features the
// engine computes at that moment. The threshold is the model's own 0.5 (even odds), not a
// value chosen to fit the data.
//
//	go run ./detect/behaviour/train [-eval] testdata/behaviour/train/*.pcap
//	go run ./detect/behaviour/train -eval -segments FILES   (each TCP segment as a record)
package main

import (
	"flag"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/detect/behaviour"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/protocols/tls"
)

type sample struct {
	file  string
	x     [behaviour.NumFeatures]float64
	label float64
}

type key struct{ c, s netip.AddrPort }

type fl struct {
	b      behaviour.Flow
	tls    bool
	seen   bool
	noALPN bool
	done   bool
	// -segments: the next sequence number per direction (retransmissions are skipped) and
	// where the synthetic record stream of each direction is.
	next  [2]uint32
	synth [2]uint32
}

// segments (-segments) scores every TCP flow, TLS or not, as if each new TCP payload segment
// were one record of its length: what the behaviour score would see on unknown non-TLS TCP
// (SSH and the like), where no record header says where messages begin. The session starts
// at the client's first payload; no_alpn is 0 (an unknown protocol offers no ALPN to miss).
var segments = flag.Bool("segments", false, "score every TCP flow with each payload segment as one record (the non-TLS question)")

// segment feeds one payload segment of f as a synthetic app-data record.
func (f *fl) segment(d int, seq uint32, n int, ts time.Time) {
	if f.next[d] != 0 && int32(seq-f.next[d]) < 0 {
		return // a retransmission
	}
	f.next[d] = seq + uint32(n)
	if n > 1<<14 {
		n = 1 << 14
	}
	rec := make([]byte, 5+n)
	rec[0], rec[1], rec[2], rec[3], rec[4] = 23, 3, 3, byte(n>>8), byte(n)
	if f.synth[d] == 0 {
		f.synth[d] = 1
	}
	f.b.Feed(d, f.synth[d], rec, ts)
	f.synth[d] += uint32(len(rec))
}

func samples(path string) ([]sample, error) {
	c, err := capture.Open(path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	base := filepath.Base(path)
	label := 0.0
	if strings.HasPrefix(base, "xmrig-") || strings.HasPrefix(base, "cpuminer-") {
		label = 1
	}
	flows := map[key]*fl{}
	var out []sample
	var fr capture.Frame
	var p flow.Packet
	for {
		if err := c.Next(&fr); err != nil {
			break
		}
		if flow.Decode(flow.LinkType(fr.LinkType), fr.Data, &p) != flow.OK || p.Proto != 6 {
			continue
		}
		a, b := netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort)
		d := behaviour.Up
		f := flows[key{a, b}]
		if f == nil {
			if f = flows[key{b, a}]; f != nil {
				d = behaviour.Down
			}
		}
		if f == nil {
			if p.TCPFlags&flow.TCPSyn == 0 || p.TCPFlags&flow.TCPAck != 0 {
				continue
			}
			f = &fl{}
			flows[key{a, b}] = f
			continue
		}
		if f.done || len(p.Payload) == 0 {
			continue
		}
		if *segments {
			if !f.seen && d == behaviour.Down {
				continue // the session starts at the client's first payload
			}
			f.seen = true
			f.segment(d, p.Seq, len(p.Payload), fr.Timestamp)
			if f.b.Due(fr.Timestamp) {
				f.done = true
				f.b.Finish()
				out = append(out, sample{base, f.b.Features(fr.Timestamp, behaviour.Context{}), label})
			}
			continue
		}
		if !f.seen && d == behaviour.Up {
			f.seen = true
			h, st := tls.ParseClientHello(p.Payload)
			if st != tls.OK {
				f.done = true
				continue
			}
			f.tls, f.noALPN = true, len(h.ALPN) == 0
			f.b.Sync(d, p.Seq, p.Payload)
			continue
		}
		if !f.tls {
			continue
		}
		f.b.Feed(d, p.Seq, p.Payload, fr.Timestamp)
		if f.b.Due(fr.Timestamp) {
			f.done = true
			f.b.Finish()
			out = append(out, sample{base, f.b.Features(fr.Timestamp, behaviour.Context{NoALPN: f.noALPN}), label})
		}
	}
	return out, nil
}

func main() {
	eval := flag.Bool("eval", false, "score the files with the built-in model and print per-class precision and recall")
	lambda := flag.Float64("l2", 1.0, "L2 penalty on the standardized weights")
	flag.Parse()
	var all []sample
	for _, path := range flag.Args() {
		s, err := samples(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		all = append(all, s...)
	}
	if *eval {
		evaluate(all, &behaviour.Builtin)
		return
	}
	m := fit(all, *lambda)
	fmt.Fprintf(os.Stderr, "%d samples\n", len(all))
	evaluate(all, &m)
	fmt.Printf("%#v\n", m)
}

func fit(all []sample, lambda float64) behaviour.Model {
	var m behaviour.Model
	m.Version = "lr-" + time.Now().UTC().Format("20060102")
	m.Threshold = 0.5
	n := float64(len(all))
	for i := 0; i < behaviour.NumFeatures; i++ {
		for _, s := range all {
			m.Mean[i] += s.x[i] / n
		}
		for _, s := range all {
			m.Std[i] += (s.x[i] - m.Mean[i]) * (s.x[i] - m.Mean[i]) / n
		}
		m.Std[i] = math.Sqrt(m.Std[i])
	}
	// Class weights: the classes count equally however many flows each has.
	var pos float64
	for _, s := range all {
		pos += s.label
	}
	wPos, wNeg := n/(2*pos), n/(2*(n-pos))
	for it := 0; it < 20000; it++ {
		var g [behaviour.NumFeatures]float64
		var gb float64
		for _, s := range all {
			w := wNeg
			if s.label == 1 {
				w = wPos
			}
			e := (m.Score(s.x) - s.label) * w
			for i := range g {
				if m.Std[i] > 0 {
					g[i] += e * (s.x[i] - m.Mean[i]) / m.Std[i]
				}
			}
			gb += e
		}
		for i := range m.W {
			m.W[i] -= 0.05 * (g[i]/n + lambda*m.W[i]/n)
		}
		m.B -= 0.05 * gb / n
	}
	return m
}

func evaluate(all []sample, m *behaviour.Model) {
	var tp, fp, tn, fn int
	for _, s := range all {
		sc := m.Score(s.x)
		hit := sc >= m.Threshold
		switch {
		case hit && s.label == 1:
			tp++
		case hit:
			fp++
		case s.label == 1:
			fn++
		default:
			tn++
		}
		fmt.Fprintf(os.Stderr, "%-28s label=%.0f score=%.3f %v\n", s.file, s.label, sc, fmtX(s.x))
	}
	div := func(a, b int) float64 {
		if b == 0 {
			return math.NaN()
		}
		return float64(a) / float64(b)
	}
	fmt.Fprintf(os.Stderr, "mining: precision %.2f recall %.2f (tp %d fp %d fn %d); benign: precision %.2f recall %.2f (tn %d)\n",
		div(tp, tp+fp), div(tp, tp+fn), tp, fp, fn, div(tn, tn+fn), div(tn, tn+fp), tn)
}

func fmtX(x [behaviour.NumFeatures]float64) string {
	var b strings.Builder
	for i, v := range x {
		fmt.Fprintf(&b, "%s=%.2f ", behaviour.FeatureNames[i], v)
	}
	return b.String()
}
