package sensor

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// KeyPaths lists every key of the config file as a dotted path (flow.max_flows), in the
// order of Config's fields; a list of objects contributes its items' keys
// (enforcement.workloads.match).
func KeyPaths() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			out = append(out, prefix+name)
			ft := f.Type
			if ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Duration(0)) {
				walk(ft, prefix+name+".")
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	return out
}

// decodeErrors rewrites the YAML decoder's errors (every unknown key and wrong type, each
// "line N: ..." with a Go type dump) as one line per problem naming the key path, the bad
// value, what is wanted and, for an unknown key, the key that was probably meant.
func decodeErrors(err error, root *yaml.Node) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	if len(te.Errors) == 1 {
		return errors.New(explainDecode(te.Errors[0], root))
	}
	lines := []string{fmt.Sprintf("%d problems:", len(te.Errors))}
	for _, e := range te.Errors {
		lines = append(lines, "  "+explainDecode(e, root))
	}
	return errors.New(strings.Join(lines, "\n"))
}

var (
	reLine    = regexp.MustCompile(`^line (\d+): (.*)$`)
	reUnknown = regexp.MustCompile(`^field (\S+) not found in type`)
	reType    = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (.+)$")
)

func explainDecode(e string, root *yaml.Node) string {
	m := reLine.FindStringSubmatch(e)
	if m == nil {
		return e
	}
	line, _ := strconv.Atoi(m[1])
	u, t := reUnknown.FindStringSubmatch(m[2]), reType.FindStringSubmatch(m[2])
	var key string
	switch {
	case u != nil:
		key = keyAtLine(root, line, func(k, _ *yaml.Node) bool { return k.Value == u[1] })
	case t != nil:
		key = keyAtLine(root, line, func(_, v *yaml.Node) bool { return v.Kind != yaml.ScalarNode || v.Value == t[2] })
	default:
		key = keyAtLine(root, line, func(_, _ *yaml.Node) bool { return true })
	}
	if u != nil {
		msg := fmt.Sprintf("line %d: %s: unknown key", line, key)
		if s := suggest(key); s != "" {
			msg += "; did you mean " + s + "?"
		}
		return msg
	}
	if t != nil {
		return fmt.Sprintf("line %d: %s: %q is not %s", line, key, t[2], want(t[3]))
	}
	return fmt.Sprintf("line %d: %s: %s", line, key, m[2])
}

// want says in words what a Go type takes.
func want(goType string) string {
	switch {
	case goType == "time.Duration":
		return "a duration (such as 500ms, 30s, 15m, 24h)"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "a list (such as [a, b])"
	}
	return "a mapping of keys"
}

// keyAtLine is the dotted path of the first key on line that ok accepts (given the key and
// its value); list items are transparent (enforcement.workloads.match).
func keyAtLine(root *yaml.Node, line int, ok func(k, v *yaml.Node) bool) string {
	best := ""
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				if best == "" {
					walk(c, prefix)
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content) && best == ""; i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if (k.Line == line || (v.Kind == yaml.ScalarNode && v.Line == line)) && ok(k, v) {
					best = prefix + k.Value
					return
				}
				walk(v, prefix+k.Value+".")
			}
		}
	}
	walk(root, "")
	if best == "" {
		return "?"
	}
	return best
}

// suggest is the known key closest to an unknown one: at the same place, or the same name
// elsewhere (max_flows at the top is flow.max_flows), or flag spelling (max-flows).
func suggest(key string) string {
	all := KeyPaths()
	parent, name := "", key
	if i := strings.LastIndex(key, "."); i >= 0 {
		parent, name = key[:i+1], key[i+1:]
	}
	name = strings.ReplaceAll(name, "-", "_")
	best, bestD := "", 3
	for _, k := range all {
		kp, kn := "", k
		if i := strings.LastIndex(k, "."); i >= 0 {
			kp, kn = k[:i+1], k[i+1:]
		}
		d := editDistance(name, kn)
		if kp != parent {
			if d != 0 {
				continue // elsewhere only by its exact name
			}
			d = 1
		}
		if d < bestD || (d == bestD && best != "" && len(k) < len(best)) {
			best, bestD = k, d
		}
	}
	if best == "" || best == key || (bestD > 1 && bestD*3 > len(name)) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = slices.Min([]int{prev[j] + 1, cur[j-1] + 1, prev[j-1] + cost})
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
