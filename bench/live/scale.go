package main

import (
	"context"
	"fmt"
	"time"
)

// scaleFigures are the scale rows: one sensor on N namespaces at rest.
type scaleFigures struct {
	Namespaces  int
	ReadyAfter  time.Duration // start until /readyz and namespaces_monitored == N
	RSSMiB      float64       // VmRSS a few seconds after ready
	OneRSSMiB   float64       // the same with one namespace (0 when N is 1)
	PeakMiB     float64       // VmHWM since start
	Monitored   int
	Rings       []ring // the rings in one of the namespaces, from the kernel
	SetupSecond float64
}

// scaleScenario builds N namespaces, each with a veth (eth0, addressed, up) whose peer is in
// a bridge of a node namespace, as pods hang off a node's bridge, then starts the sensor on
// all of them by name (not --netns all: other people's test namespaces on a shared machine
// would be counted) and measures readiness and memory. The namespaces are removed after.
func scaleScenario(ctx context.Context, cfg config, l *lab, res *result) error {
	n := cfg.Namespaces
	say("scale: %d namespaces, each with a veth to a bridge in a node namespace", n)
	t0 := time.Now()
	node, err := l.addNetns("snode")
	if err != nil {
		return err
	}
	if err := batch(node, []string{"link add br0 type bridge", "link set br0 up", "addr add 10.197.0.1/16 dev br0"}); err != nil {
		return err
	}
	names := make([]string, 0, n+1)
	defer func() { l.delNetns(append(names, node)) }()
	var links []string
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		ns, err := l.addNetns(fmt.Sprintf("s%d", i))
		if err != nil {
			return err
		}
		names = append(names, ns)
		links = append(links, fmt.Sprintf("link add v%d type veth peer name eth0 netns %s", i, ns),
			fmt.Sprintf("link set v%d master br0", i), fmt.Sprintf("link set v%d up", i))
	}
	if err := batch(node, links); err != nil {
		return err
	}
	for i, ns := range names {
		if err := batch(ns, []string{fmt.Sprintf("addr add 10.197.%d.%d/16 dev eth0", 1+i/250, 1+i%250), "link set eth0 up"}); err != nil {
			return err
		}
	}
	sc := &scaleFigures{Namespaces: n, SetupSecond: time.Since(t0).Seconds()}
	res.Scale = sc
	// The same sensor on one namespace first: the difference is what each further namespace
	// costs at rest (issue 17 asks ≤ 1 MiB).
	if n > 1 {
		p, _, _, err := startSensor(ctx, cfg, l, "scale1", names[:1])
		if err != nil {
			return err
		}
		if err := sleep(ctx, 3*time.Second); err != nil {
			p.stop(10 * time.Second)
			return err
		}
		rss, err := statusKiB(p.pid(), "VmRSS")
		p.stop(10 * time.Second)
		if err != nil {
			return err
		}
		sc.OneRSSMiB = float64(rss) / 1024
	}
	p, base, readyAfter, err := startSensor(ctx, cfg, l, "scale", names)
	if err != nil {
		return err
	}
	defer p.stop(10 * time.Second)
	sc.ReadyAfter = readyAfter
	// At rest: rings allocated, watchers settled.
	if err := sleep(ctx, 3*time.Second); err != nil {
		return err
	}
	m, err := scrape(base, cfg.Out+"/scale-metrics.txt")
	if err != nil {
		return err
	}
	sc.Monitored = int(m["minerguard_namespaces_monitored"])
	rss, err := statusKiB(p.pid(), "VmRSS")
	if err != nil {
		return err
	}
	hwm, err := statusKiB(p.pid(), "VmHWM")
	if err != nil {
		return err
	}
	sc.RSSMiB, sc.PeakMiB = float64(rss)/1024, float64(hwm)/1024
	if sc.Rings, err = rings(names[0], p.pid()); err != nil {
		return err
	}
	say("scale: ready with %d/%d monitored after %.2f s, RSS %.0f MiB (peak %.0f), rings %v", sc.Monitored, n, readyAfter.Seconds(), sc.RSSMiB, sc.PeakMiB, sc.Rings)
	return nil
}
