package tls

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"
)

// serverFacts is what crypto/tls's server saw in a ClientHello; it is the
// oracle our parser is checked against.
type serverFacts struct {
	info *stdtls.ClientHelloInfo
	raw  []byte // bytes the server read before the handshake finished
}

func (f serverFacts) refJA4() string {
	i := f.info
	ciphers := make([]uint16, len(i.CipherSuites))
	copy(ciphers, i.CipherSuites)
	schemes := make([]uint16, len(i.SignatureSchemes))
	for k, s := range i.SignatureSchemes {
		schemes[k] = uint16(s)
	}
	return refJA4(0x0303, i.SupportedVersions, ciphers, i.Extensions, schemes,
		slices.Contains(i.Extensions, extServerName), i.SupportedProtos)
}

func selfSigned(t testing.TB) stdtls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pool.example"},
		DNSNames:     []string{"pool.example"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return stdtls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// recordingConn keeps a copy of everything read from the connection.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *recordingConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}

// startServer runs a crypto/tls server on 127.0.0.1 that completes one
// handshake per connection and reports what it saw.
func startServer(t *testing.T, alpn []string) (addr string, facts <-chan serverFacts) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cert := selfSigned(t)
	ch := make(chan serverFacts, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				rc := &recordingConn{Conn: c}
				var info *stdtls.ClientHelloInfo
				srv := stdtls.Server(rc, &stdtls.Config{
					Certificates: []stdtls.Certificate{cert},
					NextProtos:   alpn,
					GetConfigForClient: func(i *stdtls.ClientHelloInfo) (*stdtls.Config, error) {
						info = i
						return nil, nil
					},
				})
				_ = srv.SetDeadline(time.Now().Add(10 * time.Second))
				herr := srv.Handshake()
				raw := rc.bytes()
				if info != nil {
					ch <- serverFacts{info: info, raw: raw}
				}
				if herr == nil {
					_, _ = srv.Write([]byte("ok\n"))
				}
			}()
		}
	}()
	return ln.Addr().String(), ch
}

func waitFacts(t *testing.T, ch <-chan serverFacts) serverFacts {
	t.Helper()
	select {
	case f := <-ch:
		return f
	case <-time.After(15 * time.Second):
		t.Fatal("server saw no ClientHello")
	}
	return serverFacts{}
}

func TestGoClientHello(t *testing.T) {
	tests := []struct {
		name       string
		serverName string
		alpn       []string
		curves     []stdtls.CurveID // nil: Go's default (X25519MLKEM768 first)
		wantSNI    string
		wantPrefix string
	}{
		{"sni-alpn", "Pool.Example", []string{"h2", "http/1.1"}, nil, "pool.example", "t13d"},
		{"no-sni-no-alpn", "", nil, nil, "", "t13i"},
		{"no-sni-stratum-alpn", "", []string{"stratum"}, nil, "", "t13i"},
		{"classic-x25519", "pool.example", []string{"h2"}, []stdtls.CurveID{stdtls.X25519}, "pool.example", "t13d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, facts := startServer(t, tt.alpn)
			cfg := &stdtls.Config{
				ServerName:         tt.serverName,
				NextProtos:         tt.alpn,
				CurvePreferences:   tt.curves,
				InsecureSkipVerify: true, // self-signed; verification is not under test
			}
			d := stdtls.Dialer{Config: cfg}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got, want := c.(*stdtls.Conn).ConnectionState().NegotiatedProtocol, first(tt.alpn); got != want {
				t.Errorf("negotiated ALPN %q, want %q", got, want)
			}
			f := waitFacts(t, facts)

			h, st := ParseClientHello(f.raw)
			if st != OK {
				t.Fatalf("status %v on %d captured bytes", st, len(f.raw))
			}
			if h.SNI != tt.wantSNI {
				t.Errorf("SNI %q, want %q", h.SNI, tt.wantSNI)
			}
			if !slices.Equal(h.ALPN, tt.alpn) {
				t.Errorf("ALPN %q, want %q", h.ALPN, tt.alpn)
			}
			if h.Version != stdtls.VersionTLS13 {
				t.Errorf("version %#x, want TLS 1.3", h.Version)
			}
			if want := f.refJA4(); h.JA4 != want {
				t.Errorf("JA4 %s, want %s", h.JA4, want)
			}
			if h.JA4[:4] != tt.wantPrefix {
				t.Errorf("JA4 %s does not start with %s", h.JA4, tt.wantPrefix)
			}
			if h.CipherCount != len(f.info.CipherSuites) || h.ExtCount != len(f.info.Extensions) {
				t.Errorf("counts %d/%d, want %d/%d", h.CipherCount, h.ExtCount,
					len(f.info.CipherSuites), len(f.info.Extensions))
			}
			t.Logf("%d bytes, JA4 %s", len(f.raw), h.JA4)
			if *update {
				writeCapture(t, "go-"+tt.name, f.raw[:helloLen(t, f.raw)], h.JA4)
			}
		})
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// captureGoHello returns the first flight of a Go client with default
// settings (post-quantum key share) and what the server saw in it.
func captureGoHello(t *testing.T, serverName string, alpn []string) serverFacts {
	t.Helper()
	addr, facts := startServer(t, alpn)
	c, err := stdtls.Dial("tcp", addr, &stdtls.Config{
		ServerName: serverName, NextProtos: alpn, InsecureSkipVerify: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	return waitFacts(t, facts)
}

// helloLen is the length of the records carrying the ClientHello at the start
// of raw (the server may also have read the client's Finished flight).
func helloLen(t *testing.T, raw []byte) int {
	t.Helper()
	off, got, need := 0, 0, -1
	for need < 0 || got < need {
		rl := int(raw[off+3])<<8 | int(raw[off+4])
		if need < 0 {
			need = 4 + (int(raw[off+6])<<16 | int(raw[off+7])<<8 | int(raw[off+8]))
		}
		got += rl
		off += 5 + rl
	}
	return off
}

// TestPostQuantumHelloEverySplit cuts a real Go 1.26 ClientHello (which is
// larger than one 1460-byte segment because of the X25519MLKEM768 key share)
// at every offset, and also re-frames it into small records, as an attacker
// or a middlebox may.
func TestPostQuantumHelloEverySplit(t *testing.T) {
	f := captureGoHello(t, "pool.example", []string{"h2"})
	raw := f.raw[:helloLen(t, f.raw)]
	if len(raw) <= 1460 {
		t.Fatalf("hello is %d bytes; expected a post-quantum hello larger than one segment", len(raw))
	}
	if !slices.Contains(f.info.SupportedCurves, stdtls.X25519MLKEM768) {
		t.Fatalf("client did not offer X25519MLKEM768: %v", f.info.SupportedCurves)
	}
	want, st := ParseClientHello(raw)
	if st != OK || want.JA4 != f.refJA4() {
		t.Fatalf("whole hello: status %v JA4 %s, want ok %s", st, want.JA4, f.refJA4())
	}
	msg := reframe(t, raw)
	for _, frag := range []int{1, 2, 3, 4, 5, 100, 1000, 1460, len(msg)} {
		stream := records(msg, frag)
		for i := 0; i < len(stream); i++ {
			if _, st := ParseClientHello(stream[:i]); st != NeedMore {
				t.Fatalf("frag %d: prefix %d/%d: status %v, want need-more", frag, i, len(stream), st)
			}
		}
		// Trailing bytes after the hello (the next flight) must not matter.
		stream = append(stream, 0x14, 3, 3, 0, 1, 1)
		got, st := ParseClientHello(stream)
		if st != OK {
			t.Fatalf("frag %d: status %v", frag, st)
		}
		if got.JA4 != want.JA4 || got.SNI != want.SNI || !slices.Equal(got.ALPN, want.ALPN) {
			t.Fatalf("frag %d: got %+v, want %+v", frag, got, want)
		}
	}
}

// reframe extracts the handshake message from a single- or multi-record
// stream.
func reframe(t *testing.T, raw []byte) []byte {
	t.Helper()
	var msg []byte
	for off := 0; off < len(raw); {
		rl := int(raw[off+3])<<8 | int(raw[off+4])
		msg = append(msg, raw[off+5:off+5+rl]...)
		off += 5 + rl
	}
	return msg
}

// TestOpenSSLClientHello checks hellos from the OpenSSL command line client,
// the TLS stack XMRig links. Without -servername and -alpn it looks like a
// miner with "sni": false: JA4 must say no SNI ("i") and no ALPN ("00").
func TestOpenSSLClientHello(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl binary not installed")
	}
	tests := []struct {
		name    string
		args    []string
		alpn    []string
		wantSNI string
		prefix  string
		alpnTag string
	}{
		{"no-sni-no-alpn", []string{"-noservername"}, nil, "", "t13i", "00"},
		{"sni-and-alpn", []string{"-servername", "pool.example", "-alpn", "stratum"}, []string{"stratum"}, "pool.example", "t13d", "sm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, facts := startServer(t, tt.alpn)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := append([]string{"s_client", "-connect", addr, "-quiet"}, tt.args...)
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Stdin = eofAfter(time.Second)
			out, err := cmd.CombinedOutput()
			f := waitFacts(t, facts)
			if err != nil {
				t.Logf("openssl exited: %v: %s", err, out)
			}
			raw := f.raw[:helloLen(t, f.raw)]
			h, st := ParseClientHello(raw)
			if st != OK {
				t.Fatalf("status %v", st)
			}
			if want := f.refJA4(); h.JA4 != want {
				t.Errorf("JA4 %s, want %s", h.JA4, want)
			}
			if h.JA4[:4] != tt.prefix || h.JA4[8:10] != tt.alpnTag {
				t.Errorf("JA4 %s: want prefix %s and ALPN tag %s", h.JA4, tt.prefix, tt.alpnTag)
			}
			if h.SNI != tt.wantSNI || !slices.Equal(h.ALPN, tt.alpn) {
				t.Errorf("SNI %q ALPN %q, want %q %q", h.SNI, h.ALPN, tt.wantSNI, tt.alpn)
			}
			t.Logf("openssl %s: %d bytes JA4 %s", tt.name, len(raw), h.JA4)
			if *update {
				writeCapture(t, "openssl-"+tt.name, raw, h.JA4)
			}
		})
	}
}

// eofAfter is a stdin that stays open long enough for s_client to finish the
// handshake, then reports EOF so it exits.
func eofAfter(d time.Duration) io.Reader {
	r, w := io.Pipe()
	go func() {
		time.Sleep(d)
		w.Close()
	}()
	return r
}
