package main

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Names the benign workloads resolve and connect to.
var benignNames = []string{
	"api.github.com", "registry-1.docker.io", "auth.docker.io", "production.cloudflare.docker.com",
	"pypi.org", "files.pythonhosted.org", "proxy.golang.org", "sum.golang.org", "registry.npmjs.org",
	"s3.eu-west-1.amazonaws.com", "sts.amazonaws.com", "storage.googleapis.com", "oauth2.googleapis.com",
	"login.microsoftonline.com", "api.stripe.com", "hooks.slack.com", "api.datadoghq.com",
	"o123456.ingest.sentry.io", "www.google.com", "fonts.gstatic.com", "cdn.jsdelivr.net",
	"grafana.com", "quay.io", "ghcr.io", "objects.githubusercontent.com", "api.openai.com",
	"ntp.ubuntu.com", "deb.debian.org", "security.debian.org", "dl-cdn.alpinelinux.org",
}

// Cluster-internal names: the bulk of real DNS traffic in a pod network.
var serviceNames = []string{
	"postgres.db.svc.cluster.local", "redis-master.cache.svc.cluster.local",
	"kafka-0.kafka-headless.streaming.svc.cluster.local", "elasticsearch.logging.svc.cluster.local",
	"api.default.svc.cluster.local", "auth.default.svc.cluster.local",
	"prometheus.monitoring.svc.cluster.local", "etcd.kube-system.svc.cluster.local",
}

// Pool names seen in public miner configs; several are matched by ET Open DNS rules.
var xmrPools = []string{
	"pool.supportxmr.com", "xmr.2miners.com", "gulf.moneroocean.stream", "pool.hashvault.pro",
	"xmr-eu1.nanopool.org", "pool.minexmr.com", "de.monero.herominers.com", "monerohash.com",
	"xmr.pool.minergate.com", "auto.c3pool.org",
}

var btcPools = []string{
	"stratum.braiins.com", "btc.viabtc.io", "ss.antpool.com", "stratum.kano.is", "eu.stratum.slushpool.com",
}

var userAgents = []string{
	"curl/8.5.0", "Go-http-client/1.1", "python-requests/2.31.0", "okhttp/4.12.0",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
	"kube-probe/1.29", "Prometheus/2.51.0", "axios/1.6.8",
}

var bulkPorts = []uint16{5432, 6379, 9092, 27017, 8080, 9200, 3306, 11211, 2379, 5672, 8443, 9000}

func (g *generator) pick(s []string) string { return s[g.rng.IntN(len(s))] }

// newFlow starts a random flow. Shares are by flow count; mining flows are
// rare but long, so they end up a few percent of the packets.
func (g *generator) newFlow() *flow {
	g.sum.Flows++
	r := g.rng.IntN(1000)
	switch {
	case r < 6:
		return g.mining()
	case r < 300:
		return g.dnsOnly()
	case r < 560:
		return g.withDNS(g.https(), 50)
	case r < 720:
		return g.withDNS(g.http(), 40)
	default:
		return g.bulk()
	}
}

// withDNS precedes f, pct percent of the time, with the lookup of its server
// name from the same workload, answered with f's server address.
func (g *generator) withDNS(f *flow, pct int) *flow {
	if f.name == "" || g.rng.IntN(100) >= pct {
		return f
	}
	g.sum.Flows++
	d := g.dns(f.wl, f.name, f.srv.ip, f.v6)
	d.next = f
	return d
}

func (g *generator) client() workload { return g.workloads[g.rng.IntN(len(g.workloads))] }

func (g *generator) tcpFlow(wl workload, srv endpoint, port uint16) *flow {
	f := &flow{v6: wl.v6, cli: wl.ep, srv: srv, cport: g.ephemeral(), sport: port,
		cseq: g.rng.Uint32(), sseq: g.rng.Uint32(), wl: wl}
	f.pkts = append(f.pkts, pkt{flags: fSYN}, pkt{fromSrv: true, flags: fSYN | fACK}, pkt{flags: fACK})
	return f
}

func (g *generator) mss(f *flow) int {
	if f.v6 {
		return 1440
	}
	return 1460
}

// send scripts data from one side, segmented at the MSS, with the delayed
// ACKs a Linux receiver sends (one per two full segments).
func (g *generator) send(f *flow, fromSrv bool, data []byte) {
	mss := g.mss(f)
	n := 0
	for len(data) > 0 {
		c := min(len(data), mss)
		fl := uint8(fACK)
		if c == len(data) {
			fl |= fPSH
		}
		f.pkts = append(f.pkts, pkt{fromSrv: fromSrv, flags: fl, data: data[:c]})
		data = data[c:]
		n++
		if n%2 == 0 && len(data) > 0 {
			f.pkts = append(f.pkts, pkt{fromSrv: !fromSrv, flags: fACK})
		}
	}
	if g.rng.IntN(2) == 0 {
		f.pkts = append(f.pkts, pkt{fromSrv: !fromSrv, flags: fACK})
	}
}

func (g *generator) close(f *flow) {
	first := g.rng.IntN(3) == 0 // server closes first a third of the time
	f.pkts = append(f.pkts,
		pkt{fromSrv: first, flags: fFIN | fACK},
		pkt{fromSrv: !first, flags: fFIN | fACK},
		pkt{fromSrv: first, flags: fACK})
}

// noiseN returns n random bytes (n ≤ 64 KiB), shared, never written to.
func (g *generator) noiseN(n int) []byte {
	off := g.rng.IntN(len(g.noise) - n)
	return g.noise[off : off+n]
}

func (g *generator) textN(n int) []byte {
	off := g.rng.IntN(len(g.text) - n)
	return g.text[off : off+n]
}

// responseSize draws a server reply size: mostly one segment, sometimes a
// burst of tens of KiB, which gives the capture its ~530-byte mean frame.
func (g *generator) responseSize() int {
	switch r := g.rng.IntN(100); {
	case r < 65:
		return 40 + g.rng.IntN(1400)
	case r < 93:
		return 1400 + g.rng.IntN(6000)
	default:
		return 7400 + g.rng.IntN(24000)
	}
}

func (g *generator) bulk() *flow {
	wl := g.client()
	kind := 0
	if g.rng.IntN(10) < 3 {
		kind = 1
	}
	f := g.tcpFlow(wl, g.server(wl.v6, kind), bulkPorts[g.rng.IntN(len(bulkPorts))])
	for range 1 + g.rng.IntN(8) {
		req := 20 + g.rng.IntN(700)
		if g.rng.IntN(10) == 0 {
			req = g.responseSize() // an upload
		}
		g.send(f, false, g.noiseN(req))
		g.send(f, true, g.noiseN(g.responseSize()))
	}
	g.close(f)
	return f
}

func (g *generator) https() *flow {
	wl := g.client()
	f := g.tcpFlow(wl, g.server(wl.v6, 1), 443)
	f.name = g.pick(benignNames)
	g.send(f, false, clientHello(g, f.name, true))
	g.send(f, true, serverHello(g))
	cs, ss := g.rng.IntN(g.tlsSmall.period), g.rng.IntN(g.tlsBig.period)
	for range 1 + g.rng.IntN(6) {
		g.send(f, false, g.tlsSmall.take(&cs, 80+g.rng.IntN(1400)))
		g.send(f, true, g.tlsBig.take(&ss, g.responseSize()))
	}
	g.close(f)
	return f
}

func (g *generator) http() *flow {
	wl := g.client()
	port := uint16(80)
	kind := 1
	if g.rng.IntN(2) == 0 {
		port, kind = 8080, 0
	}
	f := g.tcpFlow(wl, g.server(wl.v6, kind), port)
	host := g.pick(serviceNames)
	if kind == 1 {
		host = g.pick(benignNames)
		f.name = host
	}
	ua := g.pick(userAgents)
	for i := range 1 + g.rng.IntN(5) {
		var req []byte
		path := fmt.Sprintf("/api/v1/items/%d?page=%d", g.rng.IntN(100000), i)
		if g.rng.IntN(4) == 0 {
			body := g.textN(50 + g.rng.IntN(900))
			req = fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, host, ua, len(body), body)
		} else {
			req = fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n\r\n", path, host, ua)
		}
		g.send(f, false, req)
		n := g.responseSize()
		g.send(f, true, fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nServer: nginx/1.25.4\r\nDate: Mon, 02 Jun 2025 09:00:00 GMT\r\n\r\n", n))
		g.send(f, true, g.textN(n))
	}
	g.close(f)
	return f
}

// dnsOnly is a lookup with no connection following it in this capture.
func (g *generator) dnsOnly() *flow {
	wl := g.client()
	name := g.pick(serviceNames)
	if g.rng.IntN(3) == 0 {
		name = g.pick(benignNames)
	}
	srv := g.server(wl.v6, 1)
	return g.dns(wl, name, srv.ip, wl.v6)
}

// dns scripts one query and its answer; a v6 answer is AAAA, else A.
func (g *generator) dns(wl workload, name string, ip [16]byte, v6 bool) *flow {
	g.sum.DNSFlows++
	f := &flow{udp: true, v6: wl.v6, cli: wl.ep, srv: g.resolver(wl.v6), cport: g.ephemeral(), sport: 53, wl: wl}
	id := uint16(g.rng.Uint32())
	qtype := uint16(1)
	rdata := ip[:4]
	if v6 {
		qtype, rdata = 28, ip[:]
	}
	q := dnsMsg(id, name, qtype, g.rng.IntN(2) == 0, nil, 0)
	nx := strings.HasSuffix(name, ".local") && g.rng.IntN(20) == 0
	var a []byte
	if nx {
		a = dnsMsg(id, name, qtype, false, nil, 3)
	} else {
		a = dnsMsg(id, name, qtype, false, rdata, 0)
	}
	f.pkts = append(f.pkts, pkt{data: q}, pkt{fromSrv: true, data: a})
	return f
}

// dnsMsg builds a query (rdata nil, rcode 0) or a response with one answer
// record pointing back at the question name.
func dnsMsg(id uint16, name string, qtype uint16, edns bool, rdata []byte, rcode int) []byte {
	b := make([]byte, 12, 64+len(name)+len(rdata))
	binary.BigEndian.PutUint16(b, id)
	flags := uint16(0x0100) // RD
	an := 0
	response := rdata != nil || rcode != 0
	if response {
		flags = 0x8180 | uint16(rcode)
		if rdata != nil {
			an = 1
		}
	}
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], 1)
	binary.BigEndian.PutUint16(b[6:], uint16(an))
	if edns {
		binary.BigEndian.PutUint16(b[10:], 1)
	}
	for _, l := range strings.Split(name, ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, qtype)
	b = binary.BigEndian.AppendUint16(b, 1)
	if an == 1 {
		b = append(b, 0xc0, 12) // pointer to the question name
		b = binary.BigEndian.AppendUint16(b, qtype)
		b = binary.BigEndian.AppendUint16(b, 1)
		b = binary.BigEndian.AppendUint32(b, 300)
		b = binary.BigEndian.AppendUint16(b, uint16(len(rdata)))
		b = append(b, rdata...)
	}
	if edns {
		b = append(b, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0) // OPT, 1232-byte UDP payload
	}
	return b
}
