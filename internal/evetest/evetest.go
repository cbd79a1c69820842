// Package evetest validates EVE JSON lines against Suricata's own schema (vendored in
// testdata/eve), with a real JSON-schema validator, for the tests of every package that
// writes EVE. It is imported by tests only.
package evetest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	once   sync.Once
	schema *jsonschema.Schema
	err    error
)

// SchemaPath is the vendored schema, found from this file so any package's test can use it.
func SchemaPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "eve", "suricata-eve-schema.json")
}

func load() (*jsonschema.Schema, error) {
	once.Do(func() {
		var f *os.File
		if f, err = os.Open(SchemaPath()); err != nil {
			return
		}
		defer f.Close()
		var doc any
		if doc, err = jsonschema.UnmarshalJSON(f); err != nil {
			return
		}
		c := jsonschema.NewCompiler()
		// The schema names no draft; Suricata writes it for 2020-12.
		c.DefaultDraft(jsonschema.Draft2020)
		if err = c.AddResource("suricata-eve-schema.json", doc); err != nil {
			return
		}
		schema, err = c.Compile("suricata-eve-schema.json")
	})
	return schema, err
}

// Line validates one EVE line; the error names every violation.
func Line(line []byte) error {
	s, err := load()
	if err != nil {
		return fmt.Errorf("loading the EVE schema: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(v)
}

// Lines validates every non-empty line of out and fails t for each violation; it returns
// how many lines it checked.
func Lines(t testing.TB, what string, out []byte) int {
	t.Helper()
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		n++
		if err := Line(l); err != nil {
			t.Errorf("%s line %d does not validate against Suricata's EVE schema: %v\n%s", what, n, err, l)
		}
	}
	return n
}

// Keys returns the top-level keys of an EVE line, for tests that check what is present.
func Keys(line []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	return m, json.Unmarshal(line, &m)
}
