package capture

import (
	"io"
	"os"
	"testing"
)

// BenchmarkReadFile reads a capture named by MINERGUARD_BENCH_PCAP (skipped without it).
func BenchmarkReadFile(b *testing.B) {
	path := os.Getenv("MINERGUARD_BENCH_PCAP")
	if path == "" {
		b.Skip("set MINERGUARD_BENCH_PCAP to a capture file")
	}
	st, _ := os.Stat(path)
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		var f Frame
		for {
			if err := c.Next(&f); err != nil {
				if err != io.EOF {
					var te *TruncatedError
					if !asTrunc(err, &te) {
						b.Fatal(err)
					}
				}
				break
			}
		}
		c.Close()
	}
}

func asTrunc(err error, te **TruncatedError) bool {
	t, ok := err.(*TruncatedError)
	*te = t
	return ok
}
