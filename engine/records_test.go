package engine

import (
	"testing"
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/intel"
)

type countRecords struct{ n int }

func (c *countRecords) Record(*alert.Event) { c.n++ }

// BenchmarkEngineNewFlowsRecords is BenchmarkEngineNewFlows through a full 4,096-flow table,
// so every new flow evicts one: the cost of flow records at that rate, all of them (flow) or
// one in 16 (sampled), against none (off).
func BenchmarkEngineNewFlowsRecords(b *testing.B) {
	for _, c := range []struct {
		name   string
		types  RecordTypes
		sample uint32
	}{{"off", 0, 0}, {"flow", RecordFlow, 1}, {"flow-sampled-16", RecordFlow, 16}} {
		b.Run(c.name, func(b *testing.B) {
			rec := &countRecords{}
			e := New(Options{Flow: flow.Config{MaxFlows: 4096}, Detector: detect.New(intel.Builtin(), detect.ModeMonitor),
				Sink: &collect{}, Records: rec, RecordTypes: c.types, FlowSample: c.sample})
			syn := tcpFrame(b, endpoint{"10.1.0.0", 1}, endpoint{"10.2.0.1", 443}, 1, 0, true, false, false, nil)
			data := tcpFrame(b, endpoint{"10.1.0.0", 1}, endpoint{"10.2.0.1", 443}, 2, 0, false, true, false, []byte("\x16\x03\x01\x00\x05hello"))
			ts := epoch
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				ip := uint32(10<<24|1<<16) + uint32(i>>14)
				port := uint16(1024 + i&0x3fff)
				setSrc(syn, ip, port)
				setSrc(data, ip, port)
				ts = ts.Add(time.Microsecond)
				e.Packet(flow.LinkEthernet, syn, ts, 1)
				e.Packet(flow.LinkEthernet, data, ts, 1)
			}
			if c.types != 0 && b.N > 8192 && rec.n == 0 {
				b.Fatal("no flow record")
			}
		})
	}
}
