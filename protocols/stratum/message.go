package stratum

import "strings"

// This file decides what one complete JSON message is.

// verdict is the outcome of classifying one JSON message.
type verdict uint8

const (
	vInvalid   verdict = iota // not parseable JSON
	vNotRPC                   // JSON, but no JSON-RPC or web-miner shape at all
	vRPCOther                 // JSON-RPC-like without a method we can judge (e.g. "result":true)
	vNonMining                // carries a method (or type) that is not a mining one
	vMining
)

// shape says which extra structure a method name needs before it counts;
// generic names such as "login" or "submit" are only mining with the
// CryptoNote parameter layout.
type shape uint8

const (
	shapeNone shape = iota
	shapeSubscribe
	shapeLogin0 // params[0] is the user/wallet
	shapeNotify
	shapeCNLogin
	shapeCNSubmit
	shapeCNJob
	shapeEthLogin
	shapeWebAuth
	shapeWebJob
	shapeWebSubmit
	shapeWebAuthed
)

type methodInfo struct {
	v     Variant
	side  Side
	shape shape
}

// miningMethods is a read-only table of JSON-RPC method names.
var miningMethods = map[string]methodInfo{
	"mining.subscribe":            {VariantV1, SideClient, shapeSubscribe},
	"mining.authorize":            {VariantV1, SideClient, shapeLogin0},
	"mining.submit":               {VariantV1, SideClient, shapeLogin0},
	"mining.configure":            {VariantV1, SideClient, shapeNone},
	"mining.extranonce.subscribe": {VariantV1, SideClient, shapeNone},
	"mining.suggest_difficulty":   {VariantV1, SideClient, shapeNone},
	"mining.suggest_target":       {VariantV1, SideClient, shapeNone},
	"mining.get_transactions":     {VariantV1, SideClient, shapeNone},
	"mining.multi_version":        {VariantV1, SideClient, shapeNone},
	"mining.hashrate":             {VariantV1, SideClient, shapeNone},
	"mining.notify":               {VariantV1, SidePool, shapeNotify},
	"mining.set_difficulty":       {VariantV1, SidePool, shapeNone},
	"mining.set_target":           {VariantV1, SidePool, shapeNone},
	"mining.set_extranonce":       {VariantV1, SidePool, shapeNone},
	"mining.set_version_mask":     {VariantV1, SidePool, shapeNone},
	"mining.set_goal":             {VariantV1, SidePool, shapeNone},
	"client.reconnect":            {VariantV1, SidePool, shapeNone},
	"client.show_message":         {VariantV1, SidePool, shapeNone},
	"client.get_version":          {VariantV1, SidePool, shapeNone},

	"login":      {VariantCryptoNote, SideClient, shapeCNLogin},
	"submit":     {VariantCryptoNote, SideClient, shapeCNSubmit},
	"keepalived": {VariantCryptoNote, SideClient, shapeNone},
	"getjob":     {VariantCryptoNote, SideClient, shapeNone},
	"job":        {VariantCryptoNote, SidePool, shapeCNJob},

	"eth_submitLogin":    {VariantEthProxy, SideClient, shapeEthLogin},
	"eth_getWork":        {VariantEthProxy, SideClient, shapeNone},
	"eth_submitWork":     {VariantEthProxy, SideClient, shapeNone},
	"eth_submitHashrate": {VariantEthProxy, SideClient, shapeNone},

	"getwork":          {VariantGetwork, SideClient, shapeNone},
	"getblocktemplate": {VariantGBT, SideClient, shapeNone},
	"submitblock":      {VariantGBT, SideClient, shapeNone},
	"getauxblock":      {VariantGBT, SideClient, shapeNone},
	// Monero daemon RPC used by solo miners (XMRig daemon mode, p2pool).
	"get_block_template": {VariantGBT, SideClient, shapeNone},
	"submit_block":       {VariantGBT, SideClient, shapeNone},
	"createauxblock":     {VariantGBT, SideClient, shapeNone},
	"submitauxblock":     {VariantGBT, SideClient, shapeNone},
}

// webMinerTypes covers CoinHive-style {"type":...} messages.
var webMinerTypes = map[string]methodInfo{
	"auth":          {VariantWebMiner, SideClient, shapeWebAuth},
	"submit":        {VariantWebMiner, SideClient, shapeWebSubmit},
	"job":           {VariantWebMiner, SidePool, shapeWebJob},
	"authed":        {VariantWebMiner, SidePool, shapeWebAuthed},
	"hash_accepted": {VariantWebMiner, SidePool, shapeNone},
}

// maxField caps strings copied into a Result (agents, logins).
const maxField = 256

// maxMethodKeys bounds how many method-like keys one message may carry
// before the rest are ignored (they still count as duplicates).
const maxMethodKeys = 4

type methodKey struct {
	val     span
	variant bool // key differs from "method" only in case
	escaped bool // key was spelled with escapes
}

// msg is the top level of one JSON-RPC-ish object, as spans into b.
type msg struct {
	b        []byte
	methods  [maxMethodKeys]methodKey
	nMethods int // all method-like keys, may exceed maxMethodKeys
	typ      span
	params   span
	result   span
	worker   span
	rpc      bool // has id/jsonrpc/error/result/params
}

// parseTop walks the top-level object once, recording interesting members.
func parseTop(b []byte) (m msg, ok bool) {
	m.b = b
	it := objIter{b: b, i: 0}
	if !it.open() {
		return m, false
	}
	var buf nameBuf
	for {
		k, esc, v, more := it.next()
		if !more {
			break
		}
		name, ok := decodeName(&buf, k, esc)
		if !ok || len(name) == 0 {
			continue
		}
		switch string(name) {
		case "params":
			if !m.params.ok() {
				m.params = v
			}
			m.rpc = true
			continue
		case "result":
			if !m.result.ok() {
				m.result = v
			}
			m.rpc = true
			continue
		case "id", "jsonrpc", "error":
			m.rpc = true
			continue
		case "type":
			if !m.typ.ok() {
				m.typ = v
			}
			continue
		case "worker":
			m.worker = v
			continue
		}
		if len(name) == 6 && strings.EqualFold(string(name), "method") {
			if m.nMethods < maxMethodKeys {
				m.methods[m.nMethods] = methodKey{val: v, variant: string(name) != "method", escaped: esc}
			}
			m.nMethods++
		}
	}
	return m, !it.bad
}

// match is a recognised message before its strings are materialised.
type match struct {
	info    methodInfo
	method  span   // method/type value, if any
	name    string // static method name when recognised by shape
	agent   span
	login   span
	worker  span
	evasion string
}

// classify decides one complete message (an object, or a batch array).
func classify(b []byte) (match, verdict) {
	i := skipWS(b, 0)
	if i < len(b) && b[i] == '[' {
		// JSON-RPC batch: mining if any element is.
		it := arrIter{b: b, i: i}
		if !it.open() {
			return match{}, vInvalid
		}
		best := vNotRPC
		for {
			v, more := it.next()
			if !more {
				break
			}
			if kind(b, v) != '{' {
				continue
			}
			mt, vd := classify(b[:v.e][v.s:])
			if vd == vMining {
				mt.shift(v.s)
				return mt, vd
			}
			if vd > best {
				best = vd
			}
		}
		if it.bad {
			return match{}, vInvalid
		}
		return match{}, best
	}
	m, ok := parseTop(b)
	if !ok {
		return match{}, vInvalid
	}
	return m.classify()
}

// shift moves spans of a match found in a sub-slice starting at off.
func (mt *match) shift(off int) {
	for _, s := range []*span{&mt.method, &mt.agent, &mt.login, &mt.worker} {
		if s.ok() {
			s.s += off
			s.e += off
		}
	}
}

func (m *msg) classify() (match, verdict) {
	b := m.b
	sawMethod := false
	for i := 0; i < m.nMethods && i < maxMethodKeys; i++ {
		mk := m.methods[i]
		raw, esc, ok := strBody(b, mk.val)
		if !ok {
			continue
		}
		sawMethod = true
		var buf nameBuf
		name, ok := decodeName(&buf, raw, esc)
		if !ok {
			continue
		}
		info, found := miningMethods[string(name)]
		if !found {
			if len(name) > 7 && string(name[:7]) == "mining." {
				// Unknown mining.* extensions are still Stratum.
				info, found = methodInfo{VariantV1, SideClient, shapeNone}, true
				if len(name) > 11 && string(name[7:11]) == "set_" {
					info.side = SidePool
				}
			}
		}
		if !found {
			continue
		}
		mt := match{info: info, method: mk.val}
		if !m.shape(&mt) {
			continue
		}
		mt.evasion = m.evasion(mk, esc)
		return mt, vMining
	}
	if sawMethod {
		return match{}, vNonMining
	}
	typed := false
	if raw, esc, ok := strBody(b, m.typ); ok {
		typed = true
		var buf nameBuf
		if name, ok := decodeName(&buf, raw, esc); ok {
			if info, found := webMinerTypes[string(name)]; found {
				mt := match{info: info, method: m.typ}
				if m.shape(&mt) {
					return mt, vMining
				}
			}
		}
	}
	if m.result.ok() {
		if mt, ok := m.resultShape(); ok {
			return mt, vMining
		}
	}
	if typed {
		// A typed message that is not a web-miner one: some other
		// WebSocket/JSON application.
		return match{}, vNonMining
	}
	if m.rpc {
		return match{}, vRPCOther
	}
	return match{}, vNotRPC
}

// evasion names the tricks used around the winning method key.
func (m *msg) evasion(mk methodKey, valEsc bool) string {
	var notes []string
	if m.nMethods > 1 {
		notes = append(notes, "duplicate-method-key")
	}
	for i := 0; i < m.nMethods && i < maxMethodKeys; i++ {
		if m.methods[i].variant {
			notes = append(notes, "case-variant-key")
			break
		}
	}
	if mk.escaped {
		notes = append(notes, "escaped-key")
	}
	if valEsc {
		notes = append(notes, "escaped-method")
	}
	return strings.Join(notes, ",")
}

// shape checks the parameter layout a method needs and picks out the
// agent and login spans.
func (m *msg) shape(mt *match) bool {
	b, p := m.b, m.params
	switch mt.info.shape {
	case shapeSubscribe:
		if a, ok := elem(b, p, 0); ok && kind(b, a) == '"' {
			mt.agent = a
		}
		if v, ok := elem(b, p, 1); ok {
			if raw, _, ok := strBody(b, v); ok && len(raw) >= 16 && string(raw[:16]) == "EthereumStratum/" {
				mt.info.v = VariantEthStratum
			}
		}
	case shapeLogin0:
		if l, ok := elem(b, p, 0); ok && kind(b, l) == '"' {
			mt.login = l
		}
	case shapeNotify:
		// EthereumStratum/1.0.0 notify: [job_id, seedhash, headerhash, clean].
		if arrayLen(b, p) == 4 {
			s1, _ := elem(b, p, 1)
			s2, _ := elem(b, p, 2)
			if hexString(b, s1, 64) && hexString(b, s2, 64) {
				mt.info.v = VariantEthStratum
			}
		}
	case shapeCNLogin:
		l, okL := field(b, p, "login")
		_, okP := field(b, p, "pass")
		if !okL && !okP {
			return false
		}
		if kind(b, l) == '"' {
			mt.login = l
		}
		if a, ok := field(b, p, "agent"); ok && kind(b, a) == '"' {
			mt.agent = a
		}
	case shapeCNSubmit, shapeWebSubmit:
		_, okJ := field(b, p, "job_id")
		_, okN := field(b, p, "nonce")
		return okJ && okN
	case shapeCNJob, shapeWebJob:
		_, okJ := field(b, p, "job_id")
		_, okB := field(b, p, "blob")
		_, okT := field(b, p, "target")
		return okJ && (okB || okT)
	case shapeEthLogin:
		if l, ok := elem(b, p, 0); ok && kind(b, l) == '"' {
			mt.login = l
		}
		if kind(b, m.worker) == '"' {
			mt.worker = m.worker
		}
	case shapeWebAuth:
		sk, ok := field(b, p, "site_key")
		if !ok {
			return false
		}
		if kind(b, sk) == '"' {
			mt.login = sk
		}
	case shapeWebAuthed:
		_, okT := field(b, p, "token")
		_, okH := field(b, p, "hashes")
		return okT || okH
	}
	return true
}

// resultShape recognises pool results that carry no method.
func (m *msg) resultShape() (match, bool) {
	b, r := m.b, m.result
	pool := func(v Variant) (match, bool) {
		return match{info: methodInfo{v: v, side: SidePool}, name: "result"}, true
	}
	switch kind(b, r) {
	case '[':
		// eth-proxy getWork answer: 3 (some pools: 4) hex strings.
		if n := arrayLen(b, r); n == 3 || n == 4 {
			e0, _ := elem(b, r, 0)
			e1, _ := elem(b, r, 1)
			e2, _ := elem(b, r, 2)
			if hexString(b, e0, 64) && hexString(b, e1, 64) && hexString(b, e2, 1) {
				return pool(VariantEthProxy)
			}
		}
		// Stratum subscribe answer: [[subscriptions...], extranonce1, size].
		first, ok := elem(b, r, 0)
		if !ok || kind(b, first) != '[' {
			return match{}, false
		}
		second, ok := elem(b, r, 1)
		if !ok || kind(b, second) != '"' {
			return match{}, false
		}
		if v, ok := subscriptionList(b, first, 0); ok {
			return pool(v)
		}
	case '{':
		// One pass over the result object's members.
		var job, status, jobID, blob, data, target, prev, txs, cbValue, cbTxn, tmplBlob span
		it := objIter{b: b[:r.e], i: r.s}
		it.open()
		var buf nameBuf
		for {
			k, esc, v, more := it.next()
			if !more {
				break
			}
			name, ok := decodeName(&buf, k, esc)
			if !ok {
				continue
			}
			var dst *span
			switch string(name) {
			case "job":
				dst = &job
			case "status":
				dst = &status
			case "job_id":
				dst = &jobID
			case "blob":
				dst = &blob
			case "data":
				dst = &data
			case "target":
				dst = &target
			case "previousblockhash":
				dst = &prev
			case "transactions":
				dst = &txs
			case "coinbasevalue":
				dst = &cbValue
			case "coinbasetxn":
				dst = &cbTxn
			case "blocktemplate_blob":
				dst = &tmplBlob
			default:
				continue
			}
			if !dst.ok() {
				*dst = v
			}
		}
		if kind(b, job) == '{' {
			_, okJ := field(b, job, "job_id")
			_, okB := field(b, job, "blob")
			_, okT := field(b, job, "target")
			if okJ && (okB || okT) {
				return pool(VariantCryptoNote)
			}
		}
		switch {
		case strEq(b, status, "KEEPALIVED"), jobID.ok() && blob.ok():
			return pool(VariantCryptoNote)
		case hexString(b, data, 64) && hexString(b, target, 8):
			return pool(VariantGetwork)
		case prev.ok() && (cbTxn.ok() || (txs.ok() && cbValue.ok())), tmplBlob.ok():
			return pool(VariantGBT)
		}
	}
	return match{}, false
}

// subscriptionList looks for "mining.notify"-style names in the first
// element of a subscribe result (a pair or a list of pairs).
func subscriptionList(b []byte, v span, depth int) (Variant, bool) {
	if depth > 2 {
		return 0, false
	}
	it := arrIter{b: b[:v.e], i: v.s, depth: depth}
	if !it.open() {
		return 0, false
	}
	found, eth := false, false
	for {
		e, more := it.next()
		if !more {
			break
		}
		switch kind(b, e) {
		case '[':
			if vv, ok := subscriptionList(b, e, depth+1); ok {
				found = true
				eth = eth || vv == VariantEthStratum
			}
		case '"':
			raw, _, _ := strBody(b, e)
			if len(raw) > 7 && string(raw[:7]) == "mining." {
				found = true
			}
			if len(raw) >= 16 && string(raw[:16]) == "EthereumStratum/" {
				eth = true
			}
		}
	}
	if eth && found {
		return VariantEthStratum, true
	}
	return VariantV1, found
}

// result materialises a match into a Result (this is where we allocate).
func (mt *match) result(b []byte) Result {
	r := Result{Variant: mt.info.v, Side: mt.info.side, Method: mt.name, Evasion: mt.evasion}
	if mt.method.ok() {
		r.Method = decodeString(b, mt.method, maxField)
	}
	if mt.agent.ok() {
		r.Agent = decodeString(b, mt.agent, maxField)
	}
	if mt.login.ok() {
		r.Login = decodeString(b, mt.login, maxField)
	}
	if mt.worker.ok() {
		if w := decodeString(b, mt.worker, maxField); w != "" {
			if r.Login != "" {
				r.Login += "."
			}
			r.Login += w
		}
	}
	return r
}
