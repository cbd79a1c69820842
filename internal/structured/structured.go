// Package structured writes a value as indented JSON or YAML: the one layout the CLI's -o
// json|yaml outputs and the profile export files share.
package structured

import (
	"encoding/json"
	"io"

	"gopkg.in/yaml.v3"
)

// Write writes v as JSON when format is "json", else as YAML, indented by two spaces.
func Write(w io.Writer, format string, v any) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return enc.Close()
}
