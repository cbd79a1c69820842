package sensor

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/evetest"
	"github.com/minerguard/minerguard/internal/netnstest"
)

// eve.types [alert, stats]: beside the alert, a stats record each interval with the real
// counters, every line valid EVE.
func TestSensorStatsRecords(t *testing.T) {
	netnstest.RequireRoot(t)
	miner, pool := netnstest.New(t, "smine"), netnstest.New(t, "spool")
	_, poolIP := netnstest.Veth(t, miner, pool, 22)
	serve(t, pool, poolIP+":3333")
	cfg := Default()
	cfg.Netns = []string{miner}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	cfg.EVE.Types, cfg.EVE.StatsInterval = []string{"alert", "stats"}, time.Second
	out := &syncBuf{}
	startSensor(t, cfg, out)
	talk(t, miner, poolIP+":3333", login)
	var rec struct {
		EventType string `json:"event_type"`
		Host      string `json:"host"`
		Stats     struct {
			Capture struct {
				KernelPackets uint64 `json:"kernel_packets"`
			} `json:"capture"`
			Decoder struct{ Pkts uint64 }  `json:"decoder"`
			Flow    struct{ Total uint64 } `json:"flow"`
			Detect  struct{ Alert uint64 } `json:"detect"`
		} `json:"stats"`
	}
	netnstest.Eventually(t, 5*time.Second, "a stats record counting the alert", func() bool {
		for _, l := range strings.Split(out.String(), "\n") {
			if json.Unmarshal([]byte(l), &rec) == nil && rec.EventType == "stats" && rec.Stats.Detect.Alert == 1 {
				return true
			}
		}
		return false
	})
	s := rec.Stats
	if rec.Host != nodeName() || s.Capture.KernelPackets < 4 || s.Decoder.Pkts < 4 || s.Flow.Total < 1 {
		t.Errorf("stats record: %+v", rec)
	}
	if !strings.Contains(out.String(), `"event_type":"alert"`) {
		t.Errorf("no alert beside the stats:\n%s", out.String())
	}
	evetest.Lines(t, "sensor", []byte(out.String()))
}
