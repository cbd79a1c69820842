package stratum

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"
)

// benignStream is a long JSON-RPC stream that never decides early:
// answers without methods, up to the undecided budget.
func benignStream() []byte {
	var b bytes.Buffer
	for i := 0; i < maxUndecided-1; i++ {
		b.WriteString(`{"id":1,"jsonrpc":"2.0","result":{"status":"OK","value":[1,2,3,"x\"y\u00e9"]},"error":null}` + "\r\n")
	}
	return b.Bytes()
}

func TestScanAllocs(t *testing.T) {
	cases := map[string][]byte{
		"undecided json-rpc": benignStream(),
		"non-mining method":  []byte(`{"jsonrpc":"2.0","method":"eth_getBlockByNumber","params":["latest",false],"id":1}` + "\n"),
		"partial login":      []byte(xmrigLogin[:len(xmrigLogin)-20]),
		"escaped benign":     []byte(`{"id":1,"\u006dethod":"eth_c\u0061ll","Method":"x","params":[]}` + "\n"),
		"http eth":           []byte(httpReq("POST / HTTP/1.1", "User-Agent: curl/8\r\n", `{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}`)),
		"tls":                []byte("\x16\x03\x01\x02\x00\x01"),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(50, func() {
				var s Scanner
				for n := 1; n <= len(data); n += 13 {
					if _, st := s.Scan(data[:n], false); st == Match {
						t.Fatal("unexpected match")
					}
				}
				if _, st := s.Scan(data, false); st == Match {
					t.Fatal("unexpected match")
				}
			})
			if allocs != 0 {
				t.Fatalf("allocs per run = %v, want 0", allocs)
			}
		})
	}
}

func TestScanOverflowResync(t *testing.T) {
	long := "{\"id\":1,\"junk\":\"" + strings.Repeat("a", MaxLine+10) + "\"}\n"
	in := []byte(long + `{"id":2,"method":"mining.subscribe","params":["x/1"]}` + "\n")
	for _, step := range []int{0, 4096, 1 << 15} {
		r, st, s := feed(in, step, false)
		if st != Match || r.Method != "mining.subscribe" {
			t.Fatalf("step %d: got %v %+v, want match after resync", step, st, r)
		}
		if s.Overflows != 1 {
			t.Fatalf("step %d: overflows = %d, want 1", step, s.Overflows)
		}
	}
	// A text line with no newline at all stays bounded and undecided
	// only until the budget, never matching.
	var s Scanner
	junk := bytes.Repeat([]byte("x"), 3*MaxLine)
	if _, st := s.Scan(junk, true); st == Match {
		t.Fatal("junk matched")
	}
}

func TestScanUndecidedBudget(t *testing.T) {
	in := benignStream()
	in = append(in, `{"id":1,"result":null}`+"\n"...)
	if _, st, _ := feed(in, 0, false); st != NotMining {
		t.Fatalf("status = %v, want not-mining after %d undecided messages", st, maxUndecided)
	}
}

// A scanner keeps returning its verdict and restarts when handed a
// shorter prefix (a new stream).
func TestScanStickyAndReset(t *testing.T) {
	var s Scanner
	m := []byte(`{"id":1,"method":"mining.subscribe","params":[]}` + "\n")
	if _, st := s.Scan(m, false); st != Match {
		t.Fatal("no match")
	}
	if r, st := s.Scan(append(m, "garbage"...), false); st != Match || r.Method != "mining.subscribe" {
		t.Fatalf("verdict not sticky: %v %+v", st, r)
	}
	if _, st := s.Scan([]byte("\x16\x03"), false); st != Match {
		t.Fatalf("decided scanner changed verdict: %v", st)
	}
}

func TestStrings(t *testing.T) {
	if VariantEthProxy.String() != "eth-proxy" || VariantV2.String() != "stratum-v2" || Variant(200).String() != "unknown" {
		t.Fatal("variant names")
	}
	if SidePool.String() != "pool" || SideClient.String() != "client" || SideUnknown.String() != "" {
		t.Fatal("side names")
	}
}

func TestSV2FirstFlight(t *testing.T) {
	if !IsSV2FirstFlight(64, 170) || IsSV2FirstFlight(64, 171) || IsSV2FirstFlight(517, 170) {
		t.Fatal("first flight signature")
	}
	// Plaintext frames that are not a mining SetupConnection.
	bad := sv2Setup("x", "y")
	bad[6] = 1 // job declaration protocol
	if _, st, _ := feed(bad, 0, false); st != NotMining {
		t.Fatalf("non-mining protocol: %v", st)
	}
}

func TestUnquote(t *testing.T) {
	for in, want := range map[string]string{
		`mining\u002esubscribe`: "mining.subscribe",
		`a\"b\\c\/d\n`:          "a\"b\\c/d\n",
		`\ud83d\ude00`:          "\U0001F600",
		`\ud83d`:                "\uFFFD",
		`\q`:                    "q",
	} {
		var buf nameBuf
		n, ok := unquote(buf[:], []byte(in))
		if !ok || string(buf[:n]) != want {
			t.Errorf("unquote(%q) = %q %v, want %q", in, buf[:n], ok, want)
		}
	}
	var small [2]byte
	if _, ok := unquote(small[:], []byte("abc")); ok {
		t.Error("unquote into short buffer reported ok")
	}
}

func FuzzScan(f *testing.F) {
	for _, tc := range scanCases {
		f.Add([]byte(tc.in), uint8(3), tc.midstream)
	}
	f.Add([]byte(`{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`+"\n"), uint8(1), false)
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{"), uint8(5), false)
	f.Fuzz(func(t *testing.T, data []byte, seed uint8, midstream bool) {
		rng := rand.New(rand.NewSource(int64(seed)))
		var s Scanner
		var last Status
		for n := 0; n < len(data); {
			n += 1 + rng.Intn(32)
			if n > len(data) {
				n = len(data)
			}
			_, last = s.Scan(data[:n], midstream)
		}
		// Whole-buffer scanning must agree with chunked scanning on
		// whether the stream matched, unless an overflow split differently.
		var w Scanner
		_, whole := w.Scan(data, midstream)
		if (whole == Match) != (last == Match) && s.Overflows == 0 && w.Overflows == 0 {
			t.Fatalf("chunked %v vs whole %v", last, whole)
		}
	})
}

func BenchmarkScan(b *testing.B) {
	b.Run("benign-json-rpc", func(b *testing.B) {
		data := benignStream()
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var s Scanner
			s.Scan(data, false)
		}
	})
	b.Run("xmrig-login-1KiB-steps", func(b *testing.B) {
		data := []byte(xmrigLogin)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var s Scanner
			for n := 64; ; n += 64 {
				if n > len(data) {
					n = len(data)
				}
				if _, st := s.Scan(data[:n], false); st != NeedMore || n == len(data) {
					break
				}
			}
		}
	})
	b.Run("subscribe-match", func(b *testing.B) {
		data := []byte(`{"id": 1, "method": "mining.subscribe", "params": ["cpuminer-multi/1.3.7"]}` + "\n")
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var s Scanner
			s.Scan(data, false)
		}
	})
}
