// Command k8sschema writes the JSON schemas kubeconform validates against, offline: from the
// Kubernetes OpenAPI document (api/openapi-spec/swagger.json of the k8s.io/kubernetes module,
// fetched through the Go module proxy) and from CRDs' openAPIV3Schema. It does what
// kubeconform's scripts/openapi2jsonschema.py does for the "-standalone-strict" layout: $refs
// inlined, int-or-string as a oneOf, objects with properties closed to unknown fields, one
// file per kind named <kind>-<group prefix>-<version>.json (kubeconform's KindSuffix).
//
//	k8sschema -swagger swagger.json -out DIR [-crd crd.yaml]...
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	swagger := flag.String("swagger", "", "Kubernetes OpenAPI v2 document (swagger.json)")
	out := flag.String("out", "", "directory for the schemas")
	var crds multi
	flag.Var(&crds, "crd", "CustomResourceDefinition YAML whose versions get a schema (repeatable)")
	flag.Parse()
	if *out == "" || (*swagger == "" && len(crds) == 0) {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*swagger, crds, *out); err != nil {
		fmt.Fprintln(os.Stderr, "k8sschema:", err)
		os.Exit(1)
	}
}

func run(swagger string, crds []string, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	n := 0
	if swagger != "" {
		b, err := os.ReadFile(swagger)
		if err != nil {
			return err
		}
		var doc struct {
			Definitions map[string]map[string]any `json:"definitions"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("%s: %w", swagger, err)
		}
		for name, def := range doc.Definitions {
			gvks, _ := def["x-kubernetes-group-version-kind"].([]any)
			for _, g := range gvks {
				gvk, _ := g.(map[string]any)
				group, _ := gvk["group"].(string)
				version, _ := gvk["version"].(string)
				kind, _ := gvk["kind"].(string)
				s := inline(def, doc.Definitions, map[string]bool{name: true})
				if err := write(out, kind, group, version, s); err != nil {
					return err
				}
				n++
			}
		}
	}
	for _, f := range crds {
		c, err := crdSchemas(f, out)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		n += c
	}
	if n == 0 {
		return errors.New("no kinds found")
	}
	fmt.Fprintf(os.Stderr, "k8sschema: %d schemas in %s\n", n, out)
	return nil
}

// inline returns v with every "#/definitions/X" $ref replaced by X's schema. A definition
// already being expanded above (JSONSchemaProps refers to itself) becomes an open schema.
func inline(v any, defs map[string]map[string]any, stack map[string]bool) any {
	switch t := v.(type) {
	case map[string]any:
		if ref, ok := t["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/definitions/")
			def, ok := defs[name]
			if !ok || stack[name] {
				return map[string]any{}
			}
			stack[name] = true
			r := inline(def, defs, stack)
			delete(stack, name)
			return r
		}
		if t["format"] == "int-or-string" {
			return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
		}
		m := make(map[string]any, len(t)+1)
		for k, x := range t {
			if k == "x-kubernetes-group-version-kind" {
				continue
			}
			m[k] = inline(x, defs, stack)
		}
		// kubectl's validation: an object with known properties refuses unknown ones.
		if _, ok := m["properties"]; ok {
			if _, ok := m["additionalProperties"]; !ok {
				m["additionalProperties"] = false
			}
		}
		return m
	case []any:
		r := make([]any, len(t))
		for i, x := range t {
			r[i] = inline(x, defs, stack)
		}
		return r
	}
	return v
}

func write(dir, kind, group, version string, schema any) error {
	suffix := version
	if group != "" {
		suffix = strings.ToLower(strings.Split(group, ".")[0]) + "-" + version
	}
	b, err := json.Marshal(schema)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, strings.ToLower(kind)+"-"+suffix+".json"), b, 0o644)
}

// crdSchemas writes a schema for each served version of each CRD in a YAML file (one or more
// documents), closing objects with properties like kubectl does, so a misspelt field is found
// before the API server prunes it silently.
func crdSchemas(path, out string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, docb := range bytes.Split(b, []byte("\n---")) {
		var crd struct {
			Kind string `json:"kind"`
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Versions []struct {
					Name   string `json:"name"`
					Served bool   `json:"served"`
					Schema struct {
						OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(docb, &crd); err != nil {
			return n, err
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			s := inline(v.Schema.OpenAPIV3Schema, nil, map[string]bool{})
			if err := write(out, crd.Spec.Names.Kind, crd.Spec.Group, v.Name, s); err != nil {
				return n, err
			}
			n++
		}
	}
	if n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	return n, nil
}
