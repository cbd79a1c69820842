package structured

import (
	"bytes"
	"testing"
)

func TestWrite(t *testing.T) {
	v := map[string][]int{"a": {1, 2}}
	for format, want := range map[string]string{
		"json": "{\n  \"a\": [\n    1,\n    2\n  ]\n}\n",
		"yaml": "a:\n  - 1\n  - 2\n",
	} {
		var b bytes.Buffer
		if err := Write(&b, format, v); err != nil || b.String() != want {
			t.Errorf("%s: %q, %v; want %q", format, b.String(), err, want)
		}
	}
}
