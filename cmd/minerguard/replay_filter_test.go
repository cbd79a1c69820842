package main

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/minerguard/minerguard/internal/netnstest"
)

func needTcpdump(t *testing.T) string {
	p, err := exec.LookPath("tcpdump")
	if err != nil {
		netnstest.SkipReal(t, "tcpdump compiles replay's filter expressions: %v", err)
	}
	return p
}

func detectors(t *testing.T, out string) []string {
	var d []string
	for _, l := range parseEVE(t, out) {
		d = append(d, l.Alert.MG.Detector+":"+strconv.Itoa(l.DestPort))
	}
	return d
}

// A trailing filter expression keeps only what it matches, as tcpdump -r FILE EXPR: the
// miner's lookup and its Stratum flow are included or excluded by it, over Ethernet, pcapng
// and Linux SLL2 captures alike.
func TestReplayFilter(t *testing.T) {
	needTcpdump(t)
	dnsCap := capDir + "mining-dns-supportxmr-xmrig-3333.pcap"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{dnsCap}, "pool-dns:53 pool-ip:3333 stratum:3333"},
		{[]string{dnsCap, "not", "port", "53"}, "stratum:3333"},
		{[]string{dnsCap, "udp port 53"}, "pool-dns:53"},
		{[]string{dnsCap, "--", "dst port 3333 or src port 3333"}, "stratum:3333"},
		{[]string{dnsCap, "not host 10.77.0.2"}, ""},
		{[]string{capDir + "mining-webminer-relay-any-sll2.pcap", capDir + "mining-stratum-client-3333.pcapng", "tcp"}, "stratum:8892 stratum:3333 stratum:3333"},
		{[]string{capDir + "mining-webminer-relay-any-sll2.pcap", capDir + "mining-stratum-client-3333.pcapng", "udp"}, ""},
	} {
		out, errs, code := run(t, append([]string{"replay", "-o", "json"}, c.args...)...)
		if code != 0 {
			t.Errorf("%q: exit %d: %s", c.args, code, errs)
			continue
		}
		got := detectors(t, out)
		if strings.Join(got, " ") != c.want && !(c.want == "" && len(got) == 0) {
			t.Errorf("%q: alerts %v, want %s", c.args, got, c.want)
		}
		if len(c.args) > 1 && !strings.Contains(errs, "packets filtered out") {
			t.Errorf("%q: the summary does not say what the filter left out: %s", c.args, errs)
		}
	}
}

// The packets the filter keeps are those tcpdump keeps from the same file.
func TestReplayFilterAgreesWithTcpdump(t *testing.T) {
	tcpdump := needTcpdump(t)
	pkts := regexp.MustCompile(`(\d+) packets,`)
	for _, file := range []string{"mining-dns-supportxmr-xmrig-3333.pcap", "benign-https-sni-and-http-api.pcap", "mining-webminer-relay-any-sll2.pcap"} {
		for _, expr := range []string{"tcp and not port 3333", "tcp[13] & 2 != 0", "portrange 1-1000", "ip", "src net 10.0.0.0/8 or udp", "greater 100"} {
			_, errs, code := run(t, "replay", "-o", "json", capDir+file, expr)
			m := pkts.FindStringSubmatch(errs)
			if code != 0 || m == nil {
				t.Fatalf("%s %q: exit %d: %s", file, expr, code, errs)
			}
			b, err := exec.Command(tcpdump, "-nn", "-r", capDir+file, expr).Output()
			if err != nil {
				t.Fatalf("tcpdump -r %s %q: %v", file, expr, err)
			}
			if want := strconv.Itoa(strings.Count(string(b), "\n")); m[1] != want {
				t.Errorf("%s %q: replay kept %s packets, tcpdump %s", file, expr, m[1], want)
			}
		}
	}
}

// A filter that cannot be compiled is a usage error (exit 2) before anything is read; so is
// one that does not apply to a capture's link type, and a filter without tcpdump.
func TestReplayFilterErrors(t *testing.T) {
	needTcpdump(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{capDir + "mining-xmrig-login-3333.pcap", "port 3333 and"}, `filter "port 3333 and" (EN10MB): can't parse filter expression: syntax error`},
		{[]string{capDir + "mining-xmrig-login-3333.pcap", "portt", "3333"}, `filter "portt 3333"`},
		{[]string{capDir + "mining-webminer-relay-any-sll2.pcap", "ether host 1:2:3:4:5:6"}, `(LINUX_SLL2): ethernet addresses supported only on`},
		{[]string{"--", "port 3333"}, "no capture file before the filter expression"},
		{[]string{capDir + "missing.pcap", "port", "3333"}, "missing.pcap: no such file"},
	} {
		out, errs, code := run(t, append([]string{"replay", "-q", "-o", "json"}, c.args...)...)
		if code != 2 || !strings.Contains(errs, c.want) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, out, errs, c.want)
		}
	}
	t.Setenv("PATH", t.TempDir())
	if _, errs, code := run(t, "replay", "-q", capDir+"mining-xmrig-login-3333.pcap", "port 3333"); code != 2 || !strings.Contains(errs, "tcpdump compiles filter expressions and is not installed") {
		t.Errorf("without tcpdump: exit %d: %s", code, errs)
	}
}
