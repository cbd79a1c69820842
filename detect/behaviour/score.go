package behaviour

import (
	"math"
	"time"
)

// Context is what the engine knows about a flow beside its records.
type Context struct {
	// HiddenName: the destination was named by no DNS answer the sensor saw (an address
	// literal, a hosts file, or a lookup it could not see) and the workload used encrypted DNS
	// lately, so whatever name it used was hidden on purpose or not: less trust.
	HiddenName bool
	NoALPN     bool // the ClientHello offered no ALPN (XMRig's does not; browsers, curl, gRPC do)
}

// Feature names, in the model's order; they are the keys of the alert's features.
var FeatureNames = [NumFeatures]string{
	"push_per_min", "push_mean_len", "push_len_spread", "req_per_min", "req_mean_len",
	"answer_mean_len", "down_up_ratio", "up_mean_len", "down_mean_len", "hidden_name", "no_alpn",
}

// NumFeatures is the length of a feature vector.
const NumFeatures = 11

// Due reports whether f has reached its checkpoint at now: it is scored once, then.
func (f *Flow) Due(now time.Time) bool {
	return !f.done && f.first != 0 && now.UnixNano()-f.first >= int64(Checkpoint)
}

// Started reports whether the session's first app-data record was seen.
func (f *Flow) Started() bool { return f.first != 0 }

// Finish marks f decided: Feed ignores it from now on.
func (f *Flow) Finish() { f.done = true }

// Bytes is the app-data bytes of direction d so far.
func (f *Flow) Bytes(d int) uint32 { return f.bytes[d] }

// Features computes f's feature vector at now. Lengths are of TLS records (plaintext plus
// AEAD overhead) on a log scale, so a pool's JSON of a few hundred bytes and a 20-byte ping
// differ by a step, not by a factor the model must learn.
func (f *Flow) Features(now time.Time, c Context) [NumFeatures]float64 {
	var x [NumFeatures]float64
	mins := float64(now.UnixNano()-f.first) / float64(time.Minute)
	if mins < 1.0/60 {
		mins = 1.0 / 60
	}
	mean := func(sum uint32, n uint16) float64 {
		if n == 0 {
			return 0
		}
		return math.Log1p(float64(sum) / float64(n))
	}
	x[0] = float64(f.pushes) / mins
	x[1] = mean(f.pushB, f.pushes)
	if f.pushMx > 0 {
		x[2] = float64(f.pushMx-f.pushMn) / float64(f.pushMx)
	}
	x[3] = float64(f.reqs) / mins
	x[4] = mean(f.reqB, f.reqs)
	x[5] = mean(f.answB, f.answ)
	x[6] = math.Log((float64(f.bytes[Down]) + 1) / (float64(f.bytes[Up]) + 1))
	x[7] = mean(f.bytes[Up], f.n[Up])
	x[8] = mean(f.bytes[Down], f.n[Down])
	if c.HiddenName {
		x[9] = 1
	}
	if c.NoALPN {
		x[10] = 1
	}
	return x
}

// Model is a logistic regression over standardized features: score = σ(b + Σ w·(x−μ)/σ).
type Model struct {
	Version   string
	Mean, Std [NumFeatures]float64
	W         [NumFeatures]float64
	B         float64
	Threshold float64
}

// Score is the model's probability that x is a mining session.
func (m *Model) Score(x [NumFeatures]float64) float64 {
	z := m.B
	for i := range x {
		s := m.Std[i]
		if s == 0 {
			s = 1
		}
		z += m.W[i] * (x[i] - m.Mean[i]) / s
	}
	return 1 / (1 + math.Exp(-z))
}
