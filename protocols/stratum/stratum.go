package stratum

import "bytes"

// Variant is the mining protocol dialect.
type Variant uint8

const (
	VariantUnknown    Variant = iota
	VariantV1                 // "stratum-v1"
	VariantCryptoNote         // "cryptonote": XMRig/Monero login/job/submit/keepalived
	VariantEthStratum         // "ethereumstratum": NiceHash EthereumStratum/1.0.0
	VariantEthProxy           // "eth-proxy": eth_submitLogin/eth_getWork/...
	VariantGetwork            // "getwork"
	VariantGBT                // "getblocktemplate"
	VariantV2                 // "stratum-v2"
	VariantWebMiner           // "webminer": CoinHive-style JSON over WebSocket
)

var variantNames = [...]string{
	VariantUnknown:    "",
	VariantV1:         "stratum-v1",
	VariantCryptoNote: "cryptonote",
	VariantEthStratum: "ethereumstratum",
	VariantEthProxy:   "eth-proxy",
	VariantGetwork:    "getwork",
	VariantGBT:        "getblocktemplate",
	VariantV2:         "stratum-v2",
	VariantWebMiner:   "webminer",
}

func (v Variant) String() string {
	if int(v) < len(variantNames) {
		return variantNames[v]
	}
	return "unknown"
}

// Side says which end of the connection sent the recognised message.
type Side uint8

const (
	SideUnknown Side = iota
	SideClient
	SidePool
)

func (s Side) String() string {
	switch s {
	case SideClient:
		return "client"
	case SidePool:
		return "pool"
	}
	return ""
}

// Result describes the first mining message found in a direction.
type Result struct {
	Variant Variant
	Side    Side   // which side sent the recognised message
	Method  string // method, web-miner type, "result" for pool results recognised by shape, or the HTTP header that gave it away
	Agent   string // miner user agent if present
	Login   string // wallet / user.worker if present (caller may redact)
	Evasion string // "" or comma-separated notes such as "duplicate-method-key"
}

// Status is the scanner's verdict so far.
type Status uint8

const (
	NeedMore Status = iota
	Match
	NotMining
)

func (s Status) String() string {
	switch s {
	case NeedMore:
		return "need-more"
	case Match:
		return "match"
	case NotMining:
		return "not-mining"
	}
	return "unknown"
}

// MaxLine is the longest line considered (XMRig's own line cap); longer
// lines are skipped up to the next newline and counted in Overflows.
const MaxLine = 64 << 10

// maxUndecided is how many complete messages that are neither mining nor
// clearly something else (e.g. {"id":2,"result":true}) we accept before
// giving up. Pools answer a login within the first one or two messages.
const maxUndecided = 16

// maxNonMining is how many messages a stream that calls non-mining methods is read before it
// is judged not mining.
const maxNonMining = 8

type mode uint8

const (
	modeStart    mode = iota // nothing decided about framing yet
	modeLines                // newline / JSON-object framed messages
	modeSkipLine             // discarding up to the next '\n'
	modeHTTP
	modeDone
)

// Scanner inspects one direction of one TCP stream. The zero value is
// ready to use; callers keep one per direction.
type Scanner struct {
	// Overflows counts lines longer than MaxLine that were skipped.
	Overflows int
	// Messages counts complete messages (or skipped lines) examined.
	Messages int

	started bool
	mode    mode
	pos     int // next byte of data to look at
	status  Status
	res     Result

	// Message framing state for modeLines.
	inFrame  bool
	text     bool // current frame is not JSON; it ends at '\n'
	inStr    bool
	esc      bool
	depth    int
	frameBeg int

	http     httpState
	httpBody bool // modeLines is reading the body of an HTTP message
}

// Reset makes the scanner ready for a new stream.
func (s *Scanner) Reset() { *s = Scanner{} }

// Scan examines the growing in-order prefix data of one direction. See the
// package documentation for the contract.
func (s *Scanner) Scan(data []byte, midstream bool) (Result, Status) {
	if s.mode == modeDone {
		return s.res, s.status
	}
	if len(data) < s.pos {
		// The caller started a new stream on the same scanner.
		*s = Scanner{Overflows: s.Overflows}
	}
	if !s.started {
		s.started = true
		if midstream {
			s.mode = modeSkipLine
			s.Messages = 1 // so the first resynced line is not judged as a stream start
		}
	}
	for s.pos < len(data) && s.mode != modeDone {
		switch s.mode {
		case modeStart:
			if !s.start(data) {
				return Result{}, NeedMore
			}
		case modeSkipLine:
			if !s.skipLine(data) {
				return Result{}, NeedMore
			}
			s.mode = modeLines
		case modeLines:
			d := data
			if s.httpBody && s.http.clen > 0 && s.http.hdrEnd+s.http.clen < len(d) {
				// Judge the body Content-Length gives, not what follows it: otherwise the
				// verdict would depend on how the bytes were split into segments.
				d = d[:s.http.hdrEnd+s.http.clen]
			}
			s.lines(d)
			if s.pos > len(d) {
				s.pos = len(d)
			}
			if s.httpBody && s.mode == modeLines && s.http.clen > 0 && len(data)-s.http.hdrEnd >= s.http.clen {
				// The whole body arrived without a JSON verdict.
				s.httpDecide(data)
			}
		case modeHTTP:
			if !s.scanHTTP(data) {
				return Result{}, NeedMore
			}
		}
	}
	if s.mode == modeDone {
		return s.res, s.status
	}
	return Result{}, NeedMore
}

func (s *Scanner) finish(st Status, r Result) {
	s.mode, s.status, s.res = modeDone, st, r
}

// start decides the framing from the first bytes of a stream. It returns
// false when more bytes are needed.
func (s *Scanner) start(data []byte) bool {
	i := skipWS(data, s.pos)
	if i >= len(data) {
		s.pos = i
		return false
	}
	s.pos = i
	rest := data[i:]
	switch c := rest[0]; {
	case c == '{' || c == '[':
		s.mode = modeLines
		return true
	case c == 0x16 && (len(rest) < 2 || rest[1] == 3):
		// TLS handshake record.
		s.finish(NotMining, Result{})
		return true
	}
	switch httpStart(rest) {
	case prefixPartial:
		return false
	case prefixYes:
		s.mode = modeHTTP
		return true
	}
	switch r, st := sv2Plain(rest); st {
	case NeedMore:
		return false
	case Match:
		s.finish(Match, r)
		return true
	}
	// Anything else that does not start with JSON is not a mining stream:
	// clients and pools speak first with a JSON object.
	s.finish(NotMining, Result{})
	return true
}

// lines runs the message framer: a message ends at '\n' or when its top
// level JSON object closes, so both newline-framed Stratum and unframed
// concatenated objects (web-miner payloads) are handled.
func (s *Scanner) lines(data []byte) {
	for s.pos < len(data) {
		if !s.inFrame {
			i := skipWS(data, s.pos)
			if i >= len(data) {
				s.pos = i
				return
			}
			s.inFrame, s.frameBeg, s.pos = true, i, i
			s.depth, s.inStr, s.esc = 0, false, false
			s.text = data[i] != '{' && data[i] != '['
		}
		if s.text {
			j := bytes.IndexByte(data[s.pos:], '\n')
			if j < 0 {
				s.pos = len(data)
				s.checkOverflow(data)
				return
			}
			s.pos += j + 1
			s.inFrame = false
			if s.pos-s.frameBeg > MaxLine+1 {
				s.Overflows++
			}
			if s.judge(data, vNotRPC, true) {
				return
			}
			continue
		}
		// Never look further than MaxLine into one frame.
		lim := data
		if max := s.frameBeg + MaxLine + 1; len(lim) > max {
			lim = lim[:max]
		}
		end, complete := s.frame(lim)
		if !complete {
			s.checkOverflow(data)
			return
		}
		msg := data[s.frameBeg:end]
		s.inFrame = false
		mt, vd := classify(msg)
		if vd == vMining {
			r := mt.result(msg)
			if s.httpBody {
				r = s.http.decorate(data, r)
			}
			s.finish(Match, r)
			return
		}
		if s.judge(data, vd, false) {
			return
		}
	}
}

// frame advances the JSON framer; it returns the end of the message when
// the top-level value closed or the line ended.
func (s *Scanner) frame(data []byte) (int, bool) {
	i := s.pos
	for ; i < len(data); i++ {
		c := data[i]
		if s.inStr {
			switch {
			case s.esc:
				s.esc = false
			case c == '\\':
				s.esc = true
			case c == '"':
				s.inStr = false
			case c == '\n':
				s.pos = i + 1
				return i, true
			}
			continue
		}
		switch c {
		case '"':
			s.inStr = true
		case '{', '[':
			s.depth++
		case '}', ']':
			s.depth--
			if s.depth <= 0 {
				s.pos = i + 1
				return i + 1, true
			}
		case '\n':
			s.pos = i + 1
			return i, true
		}
	}
	s.pos = i
	return i, false
}

// checkOverflow skips a frame that grew past MaxLine.
func (s *Scanner) checkOverflow(data []byte) {
	if s.pos-s.frameBeg <= MaxLine {
		return
	}
	s.Overflows++
	s.inFrame = false
	s.mode = modeSkipLine
	s.judge(data, vInvalid, false)
}

// skipLine consumes up to and including the next '\n'; false if none yet.
func (s *Scanner) skipLine(data []byte) bool {
	j := bytes.IndexByte(data[s.pos:], '\n')
	if j < 0 {
		s.pos = len(data)
		return false
	}
	s.pos += j + 1
	return true
}

// judge records a non-mining message (text is a non-JSON line) and reports
// whether the stream is now decided.
func (s *Scanner) judge(data []byte, vd verdict, text bool) bool {
	first := s.Messages == 0
	s.Messages++
	switch {
	case s.httpBody:
		// The first JSON value of an HTTP body decides; a few text lines
		// (chunk sizes) are tolerated before it.
		if !text || s.Messages >= 4 {
			s.httpDecide(data)
		}
	case vd == vNonMining && s.Messages >= maxNonMining:
		// A JSON-RPC peer asking for non-mining methods is some other JSON-RPC service
		// (Ethereum node, Electrum, bitcoind, ...). Not decided on the first such call: a
		// miner that opens with one harmless call must not slip through.
		s.finish(NotMining, Result{})
	case first && vd == vNotRPC:
		// A stream whose first message is not JSON-RPC at all.
		s.finish(NotMining, Result{})
	case s.Messages >= maxUndecided:
		s.finish(NotMining, Result{})
	}
	return s.mode == modeDone
}
