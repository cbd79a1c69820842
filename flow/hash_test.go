package flow

import (
	"net/netip"
	"testing"
)

func TestFlowHashSymmetric(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("2001:db8::1")
	c := netip.MustParseAddr("10.0.0.2")
	if flowHash(7, a, 1, c, 2, 6, 9) != flowHash(7, c, 2, a, 1, 6, 9) {
		t.Error("v4 not symmetric")
	}
	if flowHash(7, a, 1, b, 2, 17, 9) != flowHash(7, b, 2, a, 1, 17, 9) {
		t.Error("mixed not symmetric")
	}
	// Each field changes the hash (for these values).
	base := flowHash(7, a, 1, c, 2, 6, 9)
	for name, h := range map[string]uint32{
		"port": flowHash(7, a, 3, c, 2, 6, 9), "proto": flowHash(7, a, 1, c, 2, 17, 9),
		"scope": flowHash(7, a, 1, c, 2, 6, 10), "seed": flowHash(8, a, 1, c, 2, 6, 9),
		"swap ports": flowHash(7, a, 2, c, 1, 6, 9),
	} {
		if h == base {
			t.Errorf("%s does not change the hash", name)
		}
	}
}
