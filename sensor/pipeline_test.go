package sensor

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	mdns "github.com/miekg/dns"
	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/engine"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/intel"
)

type sink struct {
	mu sync.Mutex
	ev []alert.Event
}

func (s *sink) Alert(e *alert.Event) { s.mu.Lock(); s.ev = append(s.ev, *e); s.mu.Unlock() }

// Frames submitted from several goroutines reach the single engine goroutine: a capture of a
// DNS lookup and a miner gives the same alerts as replay.
func TestPipelineFromCapture(t *testing.T) {
	s := &sink{}
	eng := engine.New(engine.Options{Detector: detect.New(intel.Builtin(), detect.ModeMonitor), Sink: s})
	p := NewPipeline(eng, 4096, 50*time.Millisecond)
	c, err := capture.Open("../testdata/captures/mining-dns-supportxmr-xmrig-3333.pcap")
	if err != nil {
		t.Fatal(err)
	}
	var f capture.Frame
	// Live frames carry the wall clock, and the pipeline's ticker expires flows by it: the
	// capture's packets are moved to now (keeping their spacing), or a tick landing mid-capture
	// would expire its flows as weeks idle.
	var shift time.Duration
	for {
		if err := c.Next(&f); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if shift == 0 {
			shift = time.Since(f.Timestamp)
		}
		if !p.Submit(flow.LinkType(f.LinkType), f.Data, f.Timestamp.Add(shift), 42) {
			t.Fatal("dropped with room in the queue")
		}
	}
	c.Close()
	// Unrelated frames from other goroutines at the same time.
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				p.Submit(flow.LinkEthernet, []byte{1, 2, 3}, time.Now(), uint64(g))
			}
		}()
	}
	wg.Wait()
	p.Close()
	got := map[string]bool{}
	for _, e := range s.ev {
		got[e.MG.Detector] = true
	}
	if !got["pool-dns"] || !got["stratum"] || !got["pool-ip"] || len(s.ev) != 3 {
		t.Fatalf("alerts: %+v", s.ev)
	}
	if st := p.Stats(); st.Packets < 800 || st.DecodeErrorsTotal() != 800 {
		t.Fatalf("stats after close: %d packets, %d decode errors", st.Packets, st.DecodeErrorsTotal())
	}
}

// A full queue drops and counts, and never blocks the submitter: the engine goroutine is
// parked in a blocking sink by the first alert, so the queue stays full.
func TestPipelineDropsWhenFull(t *testing.T) {
	block := make(chan struct{})
	eng := engine.New(engine.Options{Detector: detect.New(intel.Builtin(), detect.ModeMonitor), Sink: blockingSink(block)})
	p := NewPipeline(eng, 8, time.Hour)
	p.Submit(flow.LinkEthernet, poolQuery(t), time.Now(), 1)
	time.Sleep(100 * time.Millisecond) // let the engine take it and park in the sink
	done := make(chan int)
	go func() {
		ok := 0
		for i := 0; i < 10000; i++ {
			if p.Submit(flow.LinkEthernet, make([]byte, 60), time.Now(), 1) {
				ok++
			}
		}
		done <- ok
	}()
	var ok int
	select {
	case ok = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Submit blocked")
	}
	close(block)
	p.Close()
	if ok != 8 || p.Dropped() != 10000-8 {
		t.Fatalf("accepted %d, dropped %d; want 8, %d", ok, p.Dropped(), 10000-8)
	}
}

type blockingSink chan struct{}

func (b blockingSink) Alert(*alert.Event) { <-b }

func poolQuery(t *testing.T) []byte {
	m := new(mdns.Msg)
	m.SetQuestion("pool.supportxmr.com.", mdns.TypeA)
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(10, 0, 0, 2), DstIP: net.IPv4(10, 0, 0, 53)}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 53}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(q)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
