package profile

import (
	"runtime"
	"strings"
	"testing"
)

// Hostile files at the size limits: Decode refuses them with a short error and bounded
// allocation (testing.md F: no single allocation > 64 MiB; here the total is checked).
func TestDecodeHostileMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~100 MiB")
	}
	const head = "kind: MinerguardProfiles\nprofiles:\n- workload: w\n  state: learning\n  entries:\n  - name: a.b\n    port: 1\n    proto: tcp\n    ips: ["
	for _, tc := range []struct{ name, in string }{
		{"scalars as profiles", "kind: MinerguardProfiles\nprofiles: [" + strings.Repeat("1,", maxYAMLTokens-10) + "1]\n"},
		{"too many items", "kind: MinerguardProfiles\nprofiles:\n" + strings.Repeat("- 1\n", MaxDecodeYAML/4-40)},
		{"long ips near the item cap", head + strings.Repeat("1111111111111111111,", maxYAMLTokens-30) + "1]\n"},
		{"json ips", `{"kind":"MinerguardProfiles","profiles":[{"workload":"w","state":"learning","entries":[{"name":"a.b","port":1,"proto":"tcp","ips":[` +
			strings.Repeat(`"1.2.3.4",`, MaxDecodeJSON/10-20) + `"1.2.3.4"]}]}]}`},
	} {
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		_, err := Decode(strings.NewReader(tc.in))
		runtime.ReadMemStats(&b)
		alloc := (b.TotalAlloc - a.TotalAlloc) >> 20
		t.Logf("%s: %d bytes in, %d MiB allocated, error %d bytes", tc.name, len(tc.in), alloc, len(err.Error()))
		if err == nil || len(err.Error()) > 1024 {
			t.Errorf("%s: error %.300v", tc.name, err)
		}
		if alloc > 192 {
			t.Errorf("%s: %d MiB allocated", tc.name, alloc)
		}
	}
}
