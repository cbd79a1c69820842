package sensor

import (
	"strings"
	"testing"
)

// A file with many mistakes gets all of them at once, each with its line, key path, the bad
// value and what was probably meant, never the decoder's Go type dump.
func TestParseExplainsEveryKeyProblem(t *testing.T) {
	in := `netns: [web]
flow:
  max_flow: 10
  stream_depth: lots
max_flows: 5
alerts:
  rate: fast
capture:
  block-size: 4096
  block_timeout: 5x
profiles:
  enabled: maybe
  deny: 3
enforcement:
  workloads:
    - {match: "a/*", mode: bypass, fail_close: true}
bogus: 1
`
	_, err := Parse([]byte(in))
	if err == nil {
		t.Fatal("accepted")
	}
	got := err.Error()
	for _, want := range []string{
		"10 problems:",
		"line 3: flow.max_flow: unknown key; did you mean flow.max_flows?",
		`line 4: flow.stream_depth: "lots" is not a whole number`,
		"line 5: max_flows: unknown key; did you mean flow.max_flows?",
		`line 7: alerts.rate: "fast" is not a number`,
		"line 9: capture.block-size: unknown key; did you mean capture.block_size?",
		`line 10: capture.block_timeout: "5x" is not a duration`,
		`line 12: profiles.enabled: "maybe" is not true or false`,
		`line 13: profiles.deny: "3" is not a list`,
		"line 16: enforcement.workloads.fail_close: unknown key; did you mean enforcement.workloads.fail_closed?",
		"line 17: bogus: unknown key\n",
	} {
		if !strings.Contains(got+"\n", want) {
			t.Errorf("lacks %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "struct {") || strings.Contains(got, "did you mean bogus") {
		t.Errorf("type dump or a self-suggestion:\n%s", got)
	}
}

func TestSuggest(t *testing.T) {
	for in, want := range map[string]string{
		"flow.max-flows": "flow.max_flows", "web.listen_adress": "web.listen_address", "stream_depth": "flow.stream_depth",
		"profiles.windw": "profiles.window", "xyzzy": "", "alerts.zzzzzz": "",
	} {
		if got := suggest(in); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
