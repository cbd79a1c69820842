package engine

import (
	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/protocols/proxy"
	"github.com/minerguard/minerguard/protocols/stratum"
)

// state is the engine's per-flow detector state, stored inside the flow table's slab.
type state struct {
	init      bool
	done      bool // every detector decided: the rest of the flow is counted only
	facts     detect.Facts
	alerted   detect.Reasons
	appProto  string
	dnsType   uint16
	dnsNext   [2]int // TCP DNS: offset of the next length prefix per direction
	firstLen  [2]int32
	base      [2]int // offset in Stream.Data where parsers start (after a tunnel preamble or a hole)
	resync    [2]bool
	sc        [2]stratum.Scanner
	scanDone  [2]bool
	overflows [2]int
	mining    bool
	stratum   stratum.Result
	tlsDone   bool
	isTLS     bool
	hello     *alert.TLS
	proxyDone bool
	tunnel    proxy.Tunnel
	ws        [2]wsDir
	wsFailed  bool
}

// wsDir is the WebSocket unwrapping state of one direction, allocated only for tunnels.
type wsDir struct {
	dec      proxy.WSDecoder
	out      []byte
	consumed int
}

// maxWSBuffer bounds the unwrapped WebSocket messages kept per direction.
const maxWSBuffer = 64 << 10
