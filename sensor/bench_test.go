package sensor

import (
	"io"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/netnstest"
)

// notifyWriter signals every alert line written.
type notifyWriter struct{ c chan time.Time }

func (n *notifyWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			select {
			case n.c <- time.Now():
			default:
			}
		}
	}
	return len(p), nil
}

// BenchmarkDetectionLatency measures, per Stratum session, the time from the miner's write of
// its login to the alert line being written (issue 3: median and maximum over at least 100
// sessions: go test -run '^$' -bench DetectionLatency -benchtime 100x ./sensor). Root only.
func BenchmarkDetectionLatency(b *testing.B) {
	netnstest.RequireRoot(b)
	miner, pool := netnstest.New(b, "lat"), netnstest.New(b, "latp")
	_, poolIP := netnstest.Veth(b, miner, pool, 4)
	var ln net.Listener
	if err := netnstest.Do(b, pool, func() (err error) { ln, err = net.Listen("tcp", poolIP+":3333"); return }); err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	cfg := Default()
	cfg.Netns = []string{miner}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	cfg.Alerts.Rate, cfg.Alerts.Burst = 1e6, 1e6
	nw := &notifyWriter{c: make(chan time.Time, 1)}
	startSensor(b, cfg, nw)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var c net.Conn
		if err := netnstest.Do(b, miner, func() (err error) { c, err = net.Dial("tcp", poolIP+":3333"); return }); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := c.Write([]byte(login)); err != nil {
			b.Fatal(err)
		}
		select {
		case t1 := <-nw.c:
			lat = append(lat, t1.Sub(t0))
		case <-time.After(5 * time.Second):
			b.Fatalf("session %d: no alert within 5 s", i)
		}
		c.Close()
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
