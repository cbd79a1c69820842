package stratum

import (
	"bytes"
	"testing"
)

// headerIs is bytes.EqualFold, length shortcut and all: Unicode folding matches byte strings
// of two lengths (ſ is s, the Kelvin sign k), and those still match.
func TestHeaderIsEqualFold(t *testing.T) {
	names := []string{"user-agent", "x-mining-extensions", "x-stratum", "content-length", "authorization"}
	for _, n := range []string{"User-Agent", "USER-AGENT", "user-agent ", "Uſer-Agent", "X-Stratum", "x-\u017ftratum",
		"Content-Length", "Content-Lengt", "Authorization", "Host", "", "user\xffagent", "X-Mining-Extenſions"} {
		for _, lower := range names {
			want := bytes.EqualFold([]byte(n), []byte(lower))
			if got := headerIs([]byte(n), isASCII([]byte(n)), lower); got != want {
				t.Errorf("headerIs(%q, %q) = %v, want %v", n, lower, got, want)
			}
		}
	}
}
