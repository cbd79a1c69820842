package netnstest

import (
	"bufio"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// LineServer is a TCP server inside a test namespace that answers every line it receives
// with one reply line: a stand-in pool or API. Received counts the bytes of the lines that
// reached it, so a test can tell whether a flow was dropped.
type LineServer struct {
	Received atomic.Int64
}

// ListenUDP opens a UDP4 socket on addr inside netns ns, closed at cleanup.
func ListenUDP(t testing.TB, ns, addr string) net.PacketConn {
	t.Helper()
	var pc net.PacketConn
	if err := Do(t, ns, func() (err error) { pc, err = net.ListenPacket("udp4", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// ServeLines listens on addr inside namespace ns until the test ends. Each connection lives at
// most a minute.
func ServeLines(t testing.TB, ns, addr, reply string) *LineServer {
	t.Helper()
	var ln net.Listener
	if err := Do(t, ns, func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &LineServer{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					s.Received.Add(int64(len(line)))
					if err != nil {
						return
					}
					c.Write([]byte(reply + "\n"))
				}
			}()
		}
	}()
	return s
}

// Routed is a node namespace (playing the host) routing between a workload namespace and a
// pool namespace, each joined to the node by a veth pair: the node side of the workload's
// veth is where a node sensor sees the workload's egress.
type Routed struct {
	Node, Work, Pool string
	PoolIP           string
}

// NewRouted builds a Routed lab on the subnets 10.199.<n>.0/24 (node–work) and
// 10.199.<n+1>.0/24 (node–pool).
func NewRouted(t testing.TB, n int) Routed {
	t.Helper()
	l := Routed{Node: New(t, "node"), Work: New(t, "work"), Pool: New(t, "pool")}
	gwW, _ := Veth(t, l.Node, l.Work, n)
	gwP, poolIP := Veth(t, l.Node, l.Pool, n+1)
	l.PoolIP = poolIP
	Run(t, "ip", "-n", l.Work, "route", "add", "default", "via", gwW)
	Run(t, "ip", "-n", l.Pool, "route", "add", "default", "via", gwP)
	Run(t, "ip", "netns", "exec", l.Node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return l
}

// Eventually polls ok every 20 ms and fails the test when it is still false after d.
func Eventually(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}
