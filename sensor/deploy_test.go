package sensor

import (
	"os"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

// The example config installed with the systemd unit loads, holds the defaults it claims to
// hold, and lists every key there is, so it stays the reference a new key is added to.
func TestExampleConfig(t *testing.T) {
	c, err := Load("../deploy/systemd/sensor.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := yaml.Marshal(c)
	want, _ := yaml.Marshal(Default())
	if string(got) != string(want) {
		t.Errorf("deploy/systemd/sensor.yaml differs from the defaults:\n%s\nwant:\n%s", got, want)
	}
	var all yaml.Node
	yaml.Unmarshal(want, &all)
	exKeys := keyPaths(mustNode(t, "../deploy/systemd/sensor.yaml"), "")
	for _, k := range keyPaths(&all, "") {
		if !slices.Contains(exKeys, k) {
			t.Errorf("deploy/systemd/sensor.yaml lacks key %s", k)
		}
	}
}

func mustNode(t *testing.T, path string) *yaml.Node {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	return &n
}

// keyPaths lists the dotted paths of every mapping key under n.
func keyPaths(n *yaml.Node, prefix string) []string {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	var out []string
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := prefix + n.Content[i].Value
		out = append(out, k)
		out = append(out, keyPaths(n.Content[i+1], k+".")...)
	}
	return out
}
