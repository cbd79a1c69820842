package main

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/minerguard/minerguard/sensor"
	"github.com/spf13/pflag"
)

// fileOnly are the config keys that have no flag: lists of pairs and objects. The README and
// `sensor --help` say so.
var fileOnly = []string{"workloads.addresses", "enforcement.workloads"}

// flagAlias are the keys whose flag is not their path with - for _.
var flagAlias = map[string]string{"workloads.select": "workload"}

// Every key of the config file has a flag that sets it, or is listed as file-only, and the
// README names the file-only ones.
func TestEveryConfigKeyHasAFlag(t *testing.T) {
	flags := sensorCmd().Flags()
	keys := sensor.KeyPaths()
	for _, k := range keys {
		parent := slices.ContainsFunc(keys, func(o string) bool { return strings.HasPrefix(o, k+".") })
		under := slices.ContainsFunc(fileOnly, func(f string) bool { return strings.HasPrefix(k, f+".") })
		if parent || under || slices.Contains(fileOnly, k) {
			continue
		}
		name, ok := flagAlias[k]
		if !ok {
			name = strings.ReplaceAll(k, "_", "-")
		}
		if flags.Lookup(name) == nil {
			t.Errorf("config key %s has no flag --%s (add one to sensorCmd and applyFlags, or list it in fileOnly and the README)", k, name)
			continue
		}
		// The flag sets its own key and nothing else.
		if changed := flagSets(t, name); !slices.Equal(changed, []string{k}) {
			t.Errorf("--%s changes the config keys %v, want [%s]", name, changed, k)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range fileOnly {
		if !strings.Contains(string(readme), "`"+k+"`") || !strings.Contains(string(readme), "file-only") {
			t.Errorf("README does not say %s is file-only", k)
		}
	}
}

// flagSets sets flag name to a value other than its default and returns the config keys whose
// values then differ from the defaults in the config applyFlags builds.
func flagSets(t *testing.T, name string) []string {
	cmd := sensorCmd()
	f := cmd.Flags()
	fl := f.Lookup(name)
	val := map[string]string{"bool": "true", "int": "7", "float64": "7", "duration": "7s", "string": "x", "stringArray": "x", "intSlice": "9400011"}[fl.Value.Type()]
	if fl.Value.Type() == "bool" && fl.DefValue == "true" {
		val = "false"
	}
	if err := f.Set(name, val); err != nil {
		t.Fatalf("--%s=%s: %v", name, val, err)
	}
	cfg := sensor.Default()
	if err := applyFlags(f, &cfg); err != nil {
		t.Fatalf("--%s: %v", name, err)
	}
	def := sensor.Default()
	var changed []string
	for _, k := range sensor.KeyPaths() {
		a, b := valueAt(reflect.ValueOf(cfg), k), valueAt(reflect.ValueOf(def), k)
		if a.Kind() == reflect.Struct || !a.IsValid() {
			continue // a section: its leaves are listed too
		}
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			changed = append(changed, k)
		}
	}
	return changed
}

// valueAt is the field of config value v at the key path (its yaml names joined by dots);
// invalid for a key under a list.
func valueAt(v reflect.Value, path string) reflect.Value {
	for _, name := range strings.Split(path, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}
		}
		t, found := v.Type(), false
		for i := 0; i < t.NumField(); i++ {
			if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag == name {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return reflect.Value{}
		}
	}
	return v
}

// Help text reads as sentences: a capital (or a flag value) first, a full stop last.
func TestSensorHelpIsSentences(t *testing.T) {
	sensorCmd().Flags().VisitAll(func(f *pflag.Flag) {
		u := f.Usage
		if u == "" || !(unicode.IsUpper(rune(u[0])) || strings.HasPrefix(u, "A ")) || !strings.HasSuffix(u, ".") {
			t.Errorf("--%s: %q is not a sentence", f.Name, u)
		}
	})
}
