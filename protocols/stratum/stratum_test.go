package stratum

import (
	"encoding/base64"
	"strings"
	"testing"
)

// feed runs a fresh scanner over data delivered in chunks of step bytes
// (0 = all at once), returning the first decided answer.
func feed(data []byte, step int, midstream bool) (Result, Status, *Scanner) {
	var s Scanner
	if step <= 0 {
		step = len(data)
		if step == 0 {
			step = 1
		}
	}
	var r Result
	st := NeedMore
	for n := step; ; n += step {
		if n > len(data) {
			n = len(data)
		}
		r, st = s.Scan(data[:n], midstream)
		if st != NeedMore || n == len(data) {
			return r, st, &s
		}
	}
}

type scanCase struct {
	name      string
	in        string
	midstream bool
	status    Status
	want      Result // compared field by field when status == Match
}

const xmrigLogin = `{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A","pass":"x","agent":"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0","algo":["cn/1","cn/2","cn/r","cn/fast","cn/half","cn/xao","cn/rto","cn/rwz","cn/zls","cn/double","cn/ccx","cn-lite/1","cn-heavy/0","cn-heavy/tube","cn-heavy/xhv","cn-pico","cn-pico/tlo","cn/upx2","rx/0","rx/wow","rx/arq","rx/graft","rx/sfx","rx/yada","argon2/chukwa","argon2/chukwav2","argon2/ninja","ghostrider"],"rigid":"rig01"}}` + "\n"

var scanCases = []scanCase{
	// --- Stratum v1 clients ---
	{name: "cpuminer-multi subscribe", in: `{"id": 1, "method": "mining.subscribe", "params": ["cpuminer-multi/1.3.7"]}` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SideClient, Method: "mining.subscribe", Agent: "cpuminer-multi/1.3.7"}},
	{name: "cgminer subscribe no space", in: `{"id":0,"method":"mining.subscribe","params":["cgminer/4.12.1"]}` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SideClient, Method: "mining.subscribe", Agent: "cgminer/4.12.1"}},
	{name: "bmminer configure first", in: `{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2}]}` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SideClient, Method: "mining.configure"}},
	{name: "authorize login", in: `{"params": ["bc1qexample.rig1", "x"], "id": 2, "method": "mining.authorize"}` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SideClient, Method: "mining.authorize", Login: "bc1qexample.rig1"}},
	{name: "string id and CRLF", in: `{"id":"a1","method":"mining.subscribe","params":["bfgminer/5.5.0"]}` + "\r\n",
		status: Match, want: Result{Variant: VariantV1, Side: SideClient, Method: "mining.subscribe", Agent: "bfgminer/5.5.0"}},
	{name: "no newline yet but object complete", in: `{"id":1,"method":"mining.subscribe","params":[]}`,
		status: Match, want: Result{Variant: VariantV1, Side: SideClient, Method: "mining.subscribe"}},
	{name: "unknown mining extension", in: `{"id":5,"method":"mining.ping","params":[]}` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SideClient, Method: "mining.ping"}},

	// --- Stratum v1 pool side ---
	{name: "pool notify", in: `{"id":null,"method":"mining.notify","params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008","072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000",[],"00000002","1c2ac4af","504e86b9",false]}` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SidePool, Method: "mining.notify"}},
	{name: "pool subscribe result", in: `{"id":1,"result":[[["mining.set_difficulty","b4b6693b72a50c7116db18d6497cac52"],["mining.notify","ae6812eb4cd7735a302a8a9dd95cf71f"]],"08000002",4],"error":null}` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SidePool, Method: "result"}},
	{name: "pool set_difficulty", in: `{"id":null,"method":"mining.set_difficulty","params":[16384]}` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SidePool, Method: "mining.set_difficulty"}},
	{name: "pool authorize true then notify", in: `{"id":2,"result":true,"error":null}` + "\n" + `{"params":[65536],"id":null,"method":"mining.set_difficulty"}` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SidePool, Method: "mining.set_difficulty"}},
	{name: "client.reconnect", in: `{"id":null,"method":"client.reconnect","params":["pool.example",3333,0]}` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SidePool, Method: "client.reconnect"}},

	// --- CryptoNote / XMRig ---
	{name: "xmrig 6.21 login", in: xmrigLogin, status: Match, want: Result{Variant: VariantCryptoNote, Side: SideClient, Method: "login",
		Agent: "XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0", Login: "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A"}},
	{name: "login without jsonrpc, reordered, spaces", in: `{ "method" : "login" , "params" : { "agent" : "xmr-stak/2.10.8/..." , "pass" : "x" , "login" : "wallet1" } , "id" : 1 }` + "\n",
		status: Match, want: Result{Variant: VariantCryptoNote, Side: SideClient, Method: "login", Agent: "xmr-stak/2.10.8/...", Login: "wallet1"}},
	{name: "SRBMiner login", in: `{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"wallet.rig","pass":"x","agent":"SRBMiner-MULTI/2.4.5","algo":["rx/0"]}}` + "\n",
		status: Match, want: Result{Variant: VariantCryptoNote, Side: SideClient, Method: "login", Agent: "SRBMiner-MULTI/2.4.5", Login: "wallet.rig"}},
	{name: "xmrig submit", in: `{"id":4,"jsonrpc":"2.0","method":"submit","params":{"id":"1b2a","job_id":"a3f9","nonce":"de0a0100","result":"4f0b1c9e0fd55d3c7c0ef9e6a6c8c3b0b0e0a1f1a0e9b9c2c7c5e7a0a0b00000","algo":"rx/0"}}` + "\n",
		status: Match, want: Result{Variant: VariantCryptoNote, Side: SideClient, Method: "submit"}},
	{name: "keepalived", in: `{"id":7,"jsonrpc":"2.0","method":"keepalived","params":{"id":"8b2d0e"}}` + "\n",
		status: Match, want: Result{Variant: VariantCryptoNote, Side: SideClient, Method: "keepalived"}},
	{name: "pool login result", in: `{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"6a3b","job":{"blob":"0e0ea5b0","job_id":"q1","target":"b88d0600","algo":"rx/0","height":3100000,"seed_hash":"ab"},"extensions":["algo","nicehash","connect","tls","keepalive"],"status":"OK"}}` + "\n",
		status: Match, want: Result{Variant: VariantCryptoNote, Side: SidePool, Method: "result"}},
	{name: "pool job push", in: `{"jsonrpc":"2.0","method":"job","params":{"blob":"0e0e","job_id":"q2","target":"b88d0600","algo":"rx/0"}}` + "\n",
		status: Match, want: Result{Variant: VariantCryptoNote, Side: SidePool, Method: "job"}},
	{name: "pool keepalived answer", in: `{"id":1,"result":{"status":"KEEPALIVED"}}` + "\n",
		status: Match, want: Result{Variant: VariantCryptoNote, Side: SidePool, Method: "result"}},

	// --- Ethereum dialects ---
	{name: "NiceHash EthereumStratum subscribe", in: `{"id": 1, "method": "mining.subscribe", "params": ["ethminer/0.19.0", "EthereumStratum/1.0.0"]}` + "\n",
		status: Match, want: Result{Variant: VariantEthStratum, Side: SideClient, Method: "mining.subscribe", Agent: "ethminer/0.19.0"}},
	{name: "ethstratum subscribe result", in: `{"id":1,"result":[["mining.notify","ae6812eb4cd7735a302a8a9dd95cf71f","EthereumStratum/1.0.0"],"080c"],"error":null}` + "\n",
		status: Match, want: Result{Variant: VariantEthStratum, Side: SidePool, Method: "result"}},
	{name: "ethstratum notify", in: `{"id":null,"method":"mining.notify","params":["bf0488aa","abad8f99f3918bf903c6a909d9bbc0fdfa5a2f4b9cb1196175ec825c6610126c","645cf20198c2f3861e947d4f67e3ab63b7b2e24dcc9095bd9123e7b33371f6cc",true]}` + "\n",
		status: Match, want: Result{Variant: VariantEthStratum, Side: SidePool, Method: "mining.notify"}},
	{name: "claymore eth_submitLogin with worker", in: `{"worker": "rig1", "jsonrpc": "2.0", "params": ["0x52bc44d5378309ee2abf1539bf71de1b7d7be3b5"], "id": 1, "method": "eth_submitLogin"}` + "\n",
		status: Match, want: Result{Variant: VariantEthProxy, Side: SideClient, Method: "eth_submitLogin", Login: "0x52bc44d5378309ee2abf1539bf71de1b7d7be3b5.rig1"}},
	{name: "eth_getWork", in: `{"id":3,"jsonrpc":"2.0","method":"eth_getWork","params":[]}` + "\n",
		status: Match, want: Result{Variant: VariantEthProxy, Side: SideClient, Method: "eth_getWork"}},
	{name: "T-Rex eth_submitHashrate", in: `{"id":6,"jsonrpc":"2.0","method":"eth_submitHashrate","params":["0x1dcd6500","0x5ec4fb5c1db0b6ee2bf1c80f8a4a1c1b7d1e8f0c2f9f3b4a5d6e7f8091a2b3c4"],"worker":"trex"}` + "\n",
		status: Match, want: Result{Variant: VariantEthProxy, Side: SideClient, Method: "eth_submitHashrate"}},
	{name: "eth-proxy pool work result", in: `{"id":1,"jsonrpc":"2.0","result":true}` + "\n" + `{"id":0,"jsonrpc":"2.0","result":["0x645cf20198c2f3861e947d4f67e3ab63b7b2e24dcc9095bd9123e7b33371f6cc","0xabad8f99f3918bf903c6a909d9bbc0fdfa5a2f4b9cb1196175ec825c6610126c","0x0000000112e0be826d694b2e62d01511f12a6061fbaec8bc02357593e70e52ba"]}` + "\n",
		status: Match, want: Result{Variant: VariantEthProxy, Side: SidePool, Method: "result"}},

	// --- getwork / GBT raw ---
	{name: "raw getwork", in: `{"method":"getwork","params":[],"id":0}` + "\n", status: Match, want: Result{Variant: VariantGetwork, Side: SideClient, Method: "getwork"}},
	{name: "raw gbt", in: `{"id":0,"method":"getblocktemplate","params":[{"capabilities":["coinbasetxn","workid","coinbase/append"],"rules":["segwit"]}]}` + "\n",
		status: Match, want: Result{Variant: VariantGBT, Side: SideClient, Method: "getblocktemplate"}},
	{name: "gbt result", in: `{"result":{"version":536870912,"previousblockhash":"000000000000000000031d2b5a1d9d9bde1e6c1f2b0a0e2c2c6f0f4d1a2b3c4d","transactions":[],"coinbasevalue":625000000,"target":"00ff","bits":"17034219","height":800000},"error":null,"id":0}` + "\n",
		status: Match, want: Result{Variant: VariantGBT, Side: SidePool, Method: "result"}},
	{name: "monero daemon get_block_template", in: `{"jsonrpc":"2.0","id":"0","method":"get_block_template","params":{"wallet_address":"44AF","reserve_size":60}}` + "\n",
		status: Match, want: Result{Variant: VariantGBT, Side: SideClient, Method: "get_block_template"}},

	// --- web miner (proxy package adds '\n' per WebSocket message) ---
	{name: "coinhive auth", in: `{"type":"auth","params":{"site_key":"abcdEFGH1234","type":"anonymous","user":null,"goal":0}}` + "\n",
		status: Match, want: Result{Variant: VariantWebMiner, Side: SideClient, Method: "auth", Login: "abcdEFGH1234"}},
	{name: "coinhive job without newline", in: `{"type":"job","params":{"blob":"0707","job_id":"j1","target":"ffff0000"}}`,
		status: Match, want: Result{Variant: VariantWebMiner, Side: SidePool, Method: "job"}},
	{name: "coinhive authed", in: `{"type":"authed","params":{"token":"","hashes":0}}` + "\n",
		status: Match, want: Result{Variant: VariantWebMiner, Side: SidePool, Method: "authed"}},
	{name: "coinhive hash_accepted", in: `{"type":"hash_accepted","params":{"hashes":256}}{"type":"job","params":{}}`,
		status: Match, want: Result{Variant: VariantWebMiner, Side: SidePool, Method: "hash_accepted"}},

	// --- evasions ---
	{name: "escaped dot in method", in: `{"id":1,"method":"mining\u002esubscribe","params":["x/1"]}` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SideClient, Method: "mining.subscribe", Agent: "x/1", Evasion: "escaped-method"}},
	{name: "escaped key", in: `{"id":1,"\u006dethod":"login","params":{"login":"w","pass":"x"}}` + "\n",
		status: Match, want: Result{Variant: VariantCryptoNote, Side: SideClient, Method: "login", Login: "w", Evasion: "escaped-key"}},
	{name: "case variant key", in: `{"id":1,"Method":"mining.subscribe","params":[]}` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SideClient, Method: "mining.subscribe", Evasion: "case-variant-key"}},
	{name: "duplicate method benign first", in: `{"id":1,"method":"eth_call","method":"mining.subscribe","params":[]}` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SideClient, Method: "mining.subscribe", Evasion: "duplicate-method-key"}},
	{name: "duplicate + case variant", in: `{"id":1,"method":"mining.authorize","METHOD":"eth_call","params":["u.w","x"]}` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SideClient, Method: "mining.authorize", Login: "u.w", Evasion: "duplicate-method-key,case-variant-key"}},
	{name: "blank lines and whitespace", in: "\r\n\n   \t" + `{   "id" :1 ,"method"   :"mining.subscribe","params":[ ]  }` + "\r\n",
		status: Match, want: Result{Variant: VariantV1, Side: SideClient, Method: "mining.subscribe"}},
	{name: "trailing comma tolerated", in: `{"id":1,"method":"mining.subscribe","params":["a/1",],}` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SideClient, Method: "mining.subscribe", Agent: "a/1"}},
	{name: "batch", in: `[{"id":1,"method":"mining.subscribe","params":["b/2"]}]` + "\n",
		status: Match, want: Result{Variant: VariantV1, Side: SideClient, Method: "mining.subscribe", Agent: "b/2"}},
	{name: "midstream resync", midstream: true, in: `d":"q1","nonce":"aa"}}` + "\n" + `{"id":9,"method":"keepalived","params":{"id":"x"}}` + "\n",
		status: Match, want: Result{Variant: VariantCryptoNote, Side: SideClient, Method: "keepalived"}},
	{name: "midstream pool", midstream: true, in: `0000","job_id":"x"}}` + "\n" + `{"jsonrpc":"2.0","method":"job","params":{"blob":"0e","job_id":"q","target":"ff"}}` + "\n",
		status: Match, want: Result{Variant: VariantCryptoNote, Side: SidePool, Method: "job"}},
	{name: "midstream drops complete first line", midstream: true, in: `{"id":1,"method":"mining.subscribe","params":[]}` + "\n" + `{"id":1,"result":true}` + "\n",
		status: NeedMore},

	// --- Stratum V2 plaintext ---
	{name: "sv2 setup connection", in: string(sv2Setup("Bitmain", "fw1")), status: Match,
		want: Result{Variant: VariantV2, Side: SideClient, Method: "SetupConnection", Agent: "Bitmain/fw1"}},
	{name: "sv2 setup success", in: "\x00\x00\x01\x06\x00\x00\x02\x00\x00\x00\x00\x00", status: Match,
		want: Result{Variant: VariantV2, Side: SidePool, Method: "SetupConnection.Success"}},

	// --- HTTP getwork / GBT ---
	{name: "cpuminer getwork http", in: httpReq("POST / HTTP/1.1", "User-Agent: cpuminer/2.5.1\r\nX-Mining-Extensions: midstate\r\nAuthorization: Basic "+base64.StdEncoding.EncodeToString([]byte("worker1:pw"))+"\r\n", `{"method": "getwork", "params": [], "id":0}`),
		status: Match, want: Result{Variant: VariantGetwork, Side: SideClient, Method: "getwork", Agent: "cpuminer/2.5.1", Login: "worker1"}},
	{name: "pool node gbt http", in: httpReq("POST / HTTP/1.1", "User-Agent: node-stratum\r\n", `{"jsonrpc":"1.0","id":"1","method":"getblocktemplate","params":[{"rules":["segwit"]}]}`),
		status: Match, want: Result{Variant: VariantGBT, Side: SideClient, Method: "getblocktemplate", Agent: "node-stratum"}},
	{name: "http header only (cgminer UA, unknown body)", in: httpReq("POST / HTTP/1.1", "User-Agent: cgminer 2.3.1\r\n", `{"method":"foo","id":1}`),
		status: Match, want: Result{Variant: VariantGetwork, Side: SideClient, Method: "user-agent", Agent: "cgminer 2.3.1"}},
	{name: "getwork longpoll GET", in: "GET /LP HTTP/1.1\r\nHost: pool\r\nX-Mining-Extensions: longpoll midstate rollntime\r\n\r\n",
		status: Match, want: Result{Variant: VariantGetwork, Side: SideClient, Method: "x-mining-extensions"}},
	{name: "getwork response", in: httpResp("X-Roll-NTime: expire=120\r\n", `{"result":{"midstate":"`+strings.Repeat("ab", 32)+`","data":"`+strings.Repeat("00", 128)+`","hash1":"00","target":"`+strings.Repeat("ff", 28)+`00000000"},"error":null,"id":0}`),
		status: Match, want: Result{Variant: VariantGetwork, Side: SidePool, Method: "result"}},
	{name: "gbt response chunked", in: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5d\r\n" + `{"result":{"previousblockhash":"00aa","transactions":[],"coinbasevalue":1},"error":null,"id":1}` + "\r\n0\r\n\r\n",
		status: Match, want: Result{Variant: VariantGBT, Side: SidePool, Method: "result"}},
	{name: "http response stratum header", in: "HTTP/1.1 200 OK\r\nX-Stratum: stratum+tcp://pool.example:3333\r\nContent-Length: 0\r\n\r\n",
		status: Match, want: Result{Variant: VariantGetwork, Side: SidePool, Method: "x-stratum"}},

	// --- negatives ---
	{name: "eth node JSON-RPC", in: `{"jsonrpc":"2.0","method":"eth_getBlockByNumber","params":["latest",false],"id":1}` + "\n", status: NotMining},
	{name: "eth_call", in: `{"jsonrpc":"2.0","method":"eth_call","params":[{"to":"0x6b175474e89094c44da98b954eedeac495271d0f","data":"0x70a08231"},"latest"],"id":1}` + "\n", status: NotMining},
	{name: "eth http", in: httpReq("POST / HTTP/1.1", "User-Agent: Go-http-client/1.1\r\n", `{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}`), status: NotMining},
	{name: "web3 http", in: httpReq("POST /v3/key HTTP/1.1", "User-Agent: web3.py/6.0\r\n", `{"jsonrpc":"2.0","method":"web3_clientVersion","params":[],"id":1}`), status: NotMining},
	{name: "eth response", in: httpResp("", `{"jsonrpc":"2.0","id":1,"result":"0x10d4f"}`), status: NotMining},
	{name: "bitcoind rpc", in: httpReq("POST / HTTP/1.1", "Authorization: Basic dXNlcjpwYXNz\r\n", `{"jsonrpc":"1.0","id":"curltest","method":"getblockchaininfo","params":[]}`), status: NotMining},
	{name: "bitcoind raw tx", in: `{"jsonrpc":"1.0","id":"x","method":"getrawtransaction","params":["abcd",true]}` + "\n", status: NotMining},
	{name: "LSP", in: "Content-Length: 52\r\n\r\n" + `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, status: NotMining},
	{name: "LSP body only", in: `{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///a.go"}}}` + "\n", status: NotMining},
	{name: "electrum", in: `{"id": 0, "method": "server.version", "params": ["electrum/4.4.0", "1.4"]}` + "\n", status: NotMining},
	{name: "electrum scripthash", in: `{"jsonrpc":"2.0","method":"blockchain.scripthash.subscribe","params":["8b01df4e368ea28f8dc0423bcf7a4923e3a12d307c875e47a0cfbf90b5c39161"],"id":2}` + "\n", status: NotMining},
	{name: "json log", in: `{"level":"info","ts":1700000000.1,"msg":"login ok","method":"GET"}` + "\n", status: NotMining},
	{name: "json log no method", in: `{"level":"info","msg":"mining.subscribe is a string here"}` + "\n", status: NotMining},
	{name: "REST JSON http", in: httpReq("POST /api/v1/items HTTP/1.1", "User-Agent: curl/8.0\r\n", `{"name":"job","type":"job","params":{"blob":1}}`), status: NotMining},
	{name: "websocket app type auth", in: `{"type":"auth","params":{"token":"abc"}}` + "\n", status: NotMining},
	{name: "generic job method", in: `{"id":1,"method":"job","params":{"name":"build"}}` + "\n", status: NotMining},
	{name: "generic login method", in: `{"id":1,"method":"login","params":["user","pw"]}` + "\n", status: NotMining},
	{name: "TLS client hello", in: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", status: NotMining},
	{name: "binary garbage", in: "\x8f\x01\xff\x00\x13binary", status: NotMining},
	{name: "SSH banner", in: "SSH-2.0-OpenSSH_9.6\r\n", status: NotMining},
	{name: "http GET html", in: "GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0\r\n\r\n", status: NotMining},
	{name: "http response html", in: "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<html></html>", status: NotMining},
	{name: "mining word in string only", in: `{"id":1,"result":"mining.subscribe"}` + "\n", status: NeedMore},
	{name: "four hex strings that are addresses", in: `{"id":1,"result":["0x52bc44d5378309ee2abf1539bf71de1b7d7be3b5","0x52bc44d5378309ee2abf1539bf71de1b7d7be3b6","0x1"]}` + "\n", status: NeedMore},
}

func httpReq(line, headers, body string) string {
	return line + "\r\nHost: 127.0.0.1:8332\r\n" + headers + "Content-Type: application/json\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body
}

func httpResp(headers, body string) string {
	return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + headers + "Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// sv2Setup builds a plaintext SV2 SetupConnection frame.
func sv2Setup(vendor, fw string) []byte {
	str := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	p := []byte{0, 2, 0, 2, 0, 1, 0, 0, 0}
	p = append(p, str("pool.example")...)
	p = append(p, 0x0d, 0x05)
	p = append(p, str(vendor)...)
	p = append(p, str("S19")...)
	p = append(p, str(fw)...)
	p = append(p, str("dev1")...)
	h := []byte{0, 0, 0, byte(len(p)), byte(len(p) >> 8), byte(len(p) >> 16)}
	return append(h, p...)
}

func TestScan(t *testing.T) {
	for _, tc := range scanCases {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{0, 1, 2, 7, 64} {
				got, st, _ := feed([]byte(tc.in), step, tc.midstream)
				if tc.status == NotMining && st == NeedMore {
					// A few non-mining calls are not yet a verdict (see maxNonMining): what
					// matters is that they never match.
					st = NotMining
				}
				if st != tc.status {
					t.Fatalf("step %d: status = %v, want %v (result %+v)", step, st, tc.status, got)
				}
				if st == Match && got != tc.want {
					t.Fatalf("step %d: result\n got %+v\nwant %+v", step, got, tc.want)
				}
			}
		})
	}
}

// A miner that opens with harmless JSON-RPC calls is still found, as long as it logs in within
// maxNonMining messages; a stream of only such calls is judged not mining after them.
func TestBenignCallsThenLogin(t *testing.T) {
	benign := `{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}` + "\n"
	login := `{"id":2,"jsonrpc":"2.0","method":"login","params":{"login":"44wallet","pass":"x","agent":"XMRig/6.21.0"}}` + "\n"
	var s Scanner
	data := []byte(benign + benign + login)
	if r, st := s.Scan(data, false); st != Match || r.Method != "login" {
		t.Fatalf("benign-first evasion: %v %+v", st, r)
	}
	var n Scanner
	many := []byte(strings.Repeat(benign, maxNonMining))
	if _, st := n.Scan(many, false); st != NotMining {
		t.Fatalf("after %d non-mining calls: %v", maxNonMining, st)
	}
}
