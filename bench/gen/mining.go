package main

import (
	"encoding/hex"
	"fmt"
)

var miningPorts = []uint16{3333, 3333, 4444, 5555, 14444, 14444, 10128, 80}

var btcAgents = []string{"cgminer/4.12.1", "bfgminer/5.5.0", "NiceMiner/1.0", "Antminer S19/Mon Apr 10 2023"}

var xmrAgents = []string{
	"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0",
	"XMRig/6.22.2 (Linux x86_64) libuv/1.48.0 gcc/13.2.1",
	"xmr-stak/2.10.8/e0e2a5a/master/lin/cpu/monero/0",
}

// mining starts a long-lived miner connection, usually after the lookup of
// its pool name from the same workload (a fifth connect to an IP literal).
func (g *generator) mining() *flow {
	g.sum.MiningFlows++
	wl := g.client()
	srv := g.server(wl.v6, 2)
	var f *flow
	switch r := g.rng.IntN(10); {
	case r < 4:
		f = g.stratumV1(wl, srv)
	case r < 9:
		f = g.xmrig(wl, srv)
	default:
		f = g.xmrigTLS(wl, srv)
	}
	f.mining = true
	if g.rng.IntN(5) == 0 {
		f.name = ""
	}
	return g.withDNS(f, 100)
}

func (g *generator) hexN(n int) string { return hex.EncodeToString(g.noiseN(n)) }

func (g *generator) stratumV1(wl workload, srv endpoint) *flow {
	f := g.tcpFlow(wl, srv, miningPorts[g.rng.IntN(len(miningPorts))])
	f.name = g.pick(btcPools)
	worker := fmt.Sprintf("acct%d.rig%d", g.rng.IntN(10000), g.rng.IntN(100))
	line := func(fromSrv bool, format string, a ...any) {
		g.send(f, fromSrv, fmt.Appendf(nil, format+"\n", a...))
	}
	line(false, `{"id": 1, "method": "mining.subscribe", "params": ["%s"]}`, g.pick(btcAgents))
	if g.rng.IntN(2) == 0 {
		line(true, `{"id": 1, "result": [[["mining.set_difficulty", "%s"], ["mining.notify", "%s"]], "%s", 4], "error": null}`, g.hexN(16), g.hexN(16), g.hexN(4))
	} else {
		line(true, `{"id": 1, "result": [["mining.notify", "%s"], "%s", 4], "error": null}`, g.hexN(16), g.hexN(4))
	}
	line(false, `{"id": 2, "method": "mining.authorize", "params": ["%s", "x"]}`, worker)
	line(true, `{"id": 2, "result": true, "error": null}`)
	line(true, `{"id": null, "method": "mining.set_difficulty", "params": [%d]}`, 1<<(10+g.rng.IntN(10)))
	id := 3
	for range 20 + g.rng.IntN(80) {
		switch g.rng.IntN(3) {
		case 0:
			line(true, `{"id": null, "method": "mining.notify", "params": ["%x", "%s", "%s", "%s", ["%s", "%s"], "20000000", "17034219", "%08x", %t]}`,
				g.rng.IntN(1<<16), g.hexN(32), g.hexN(60), g.hexN(40), g.hexN(32), g.hexN(32), g.rng.Uint32(), g.rng.IntN(4) == 0)
		default:
			line(false, `{"id": %d, "method": "mining.submit", "params": ["%s", "%x", "%s", "%08x", "%s"]}`,
				id, worker, g.rng.IntN(1<<16), g.hexN(4), g.rng.Uint32(), g.hexN(4))
			line(true, `{"id": %d, "result": true, "error": null}`, id)
			id++
		}
	}
	g.close(f)
	return f
}

func (g *generator) wallet() string {
	const b58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	w := make([]byte, 95)
	w[0] = '4'
	for i := 1; i < len(w); i++ {
		w[i] = b58[g.rng.IntN(len(b58))]
	}
	return string(w)
}

func (g *generator) xmrJob() string {
	return fmt.Sprintf(`{"blob":"%s","job_id":"%s","target":"%s","algo":"rx/0","height":%d,"seed_hash":"%s"}`,
		g.hexN(76), g.hexN(12), g.hexN(4), 3_100_000+g.rng.IntN(100000), g.hexN(32))
}

// xmrigScript appends the XMRig dialect as lines; out sends one line.
func (g *generator) xmrigScript(out func(fromSrv bool, b []byte)) {
	line := func(fromSrv bool, format string, a ...any) { out(fromSrv, fmt.Appendf(nil, format+"\n", a...)) }
	line(false, `{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"%s","pass":"x","agent":"%s","algo":["rx/0","cn/r","cn-pico","rx/wow","argon2/chukwav2"],"rigid":""}}`,
		g.wallet(), g.pick(xmrAgents))
	line(true, `{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"%s","job":%s,"extensions":["algo","nicehash","connect","tls","keepalive"],"status":"OK"}}`,
		g.hexN(8), g.xmrJob())
	id := 2
	for range 20 + g.rng.IntN(80) {
		switch g.rng.IntN(5) {
		case 0, 1:
			line(true, `{"jsonrpc":"2.0","method":"job","params":%s}`, g.xmrJob())
		case 2, 3:
			line(false, `{"id":%d,"jsonrpc":"2.0","method":"submit","params":{"id":"%s","job_id":"%s","nonce":"%s","result":"%s","algo":"rx/0"}}`,
				id, g.hexN(8), g.hexN(12), g.hexN(4), g.hexN(32))
			line(true, `{"id":%d,"jsonrpc":"2.0","error":null,"result":{"status":"OK"}}`, id)
			id++
		default:
			line(false, `{"id":%d,"jsonrpc":"2.0","method":"keepalived","params":{"id":"%s"}}`, id, g.hexN(8))
			line(true, `{"id":%d,"jsonrpc":"2.0","error":null,"result":{"status":"KEEPALIVED"}}`, id)
			id++
		}
	}
}

func (g *generator) xmrig(wl workload, srv endpoint) *flow {
	f := g.tcpFlow(wl, srv, miningPorts[g.rng.IntN(len(miningPorts))])
	f.name = g.pick(xmrPools)
	g.xmrigScript(func(fromSrv bool, b []byte) { g.send(f, fromSrv, b) })
	g.close(f)
	return f
}

// xmrigTLS is stratum+ssl on 443: a ClientHello without ALPN (SNI half the
// time), then each Stratum line as one opaque record of about its size.
func (g *generator) xmrigTLS(wl workload, srv endpoint) *flow {
	f := g.tcpFlow(wl, srv, 443)
	f.name = g.pick(xmrPools)
	sni := ""
	if g.rng.IntN(2) == 0 {
		sni = f.name
	}
	g.send(f, false, clientHello(g, sni, false))
	g.send(f, true, serverHello(g))
	cs, ss := g.rng.IntN(g.tlsSmall.period), g.rng.IntN(g.tlsSmall.period)
	g.xmrigScript(func(fromSrv bool, b []byte) {
		n := len(b) + 22 // AEAD tag and record header
		if fromSrv {
			g.send(f, true, g.tlsSmall.take(&ss, n))
		} else {
			g.send(f, false, g.tlsSmall.take(&cs, n))
		}
	})
	g.close(f)
	return f
}
