package workload

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Static is an operator's map from namespaces to identities, loaded from YAML:
//
//	workloads:
//	  - name: billing/api            # the identity, used verbatim
//	    labels: {team: billing}      # optional
//	    netns: [api, api-canary]     # names under /var/run/netns
//	    inodes: [4026532451]         # netns inodes
//	    containers: [3f4e2a1b9c0d]   # container ID prefixes, 12 to 64 hex characters
//
// A namespace matches by name first, then inode, then container. Each matcher may appear
// only once in the file. Static is immutable after loading and safe for concurrent use.
type Static struct {
	byName  map[string]*staticEntry
	byInode map[uint64]*staticEntry
	// containers is sorted by prefix, longest prefix wins when prefixes nest.
	containers []containerMatch
}

type staticEntry struct {
	name   string
	labels map[string]string
}

type containerMatch struct {
	prefix string
	entry  *staticEntry
}

// staticFile is the YAML schema; decoded with known fields only.
type staticFile struct {
	Workloads []staticYAML `yaml:"workloads"`
}

type staticYAML struct {
	Name       string            `yaml:"name"`
	Labels     map[string]string `yaml:"labels"`
	Netns      []string          `yaml:"netns"`
	Inodes     []uint64          `yaml:"inodes"`
	Containers []string          `yaml:"containers"`
}

// maxStaticFile bounds a static map file; a hand-written map is tiny.
const maxStaticFile = 4 << 20

// LoadStatic reads a static map file. Errors name the file and the line.
func LoadStatic(path string) (*Static, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading static workload map: %w", err)
	}
	defer f.Close()
	return ParseStatic(f, path)
}

// ParseStatic reads a static map from r; name is used in errors ("NAME line N: ...").
func ParseStatic(r io.Reader, name string) (*Static, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxStaticFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxStaticFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxStaticFile)
	}
	// Anchors and aliases are refused before the typed decode: a few hundred bytes of nested
	// aliases expand to millions of entries (FuzzLoadStatic hung on one), and a workload map
	// has no use for them.
	var pre yaml.Node
	if err := yaml.Unmarshal(data, &pre); err == nil {
		if line := aliasLine(&pre, 0); line > 0 {
			return nil, fmt.Errorf("%s line %d: YAML anchors and aliases are not allowed", name, line)
		}
	}
	var file staticFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", name, yamlErr(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, yamlErr(err))
		}
		return nil, fmt.Errorf("%s line %d: only one YAML document is allowed", name, extra.Line)
	}
	// The typed decode has no positions; a second pass over the node tree gives the line of
	// each value for validation errors.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", name, yamlErr(err))
	}
	lines := staticLines(&root)

	s := &Static{byName: map[string]*staticEntry{}, byInode: map[uint64]*staticEntry{}}
	seen := map[string]int{} // matcher → line first used
	claim := func(key string, line int) error {
		if prev, ok := seen[key]; ok {
			return fmt.Errorf("%s line %d: %s already mapped at line %d", name, line, key, prev)
		}
		seen[key] = line
		return nil
	}
	for i, w := range file.Workloads {
		at := func(field string, j int) int { return lines.at(i, field, j) }
		if strings.TrimSpace(w.Name) == "" {
			return nil, fmt.Errorf("%s line %d: workloads[%d]: name is required", name, at("", -1), i)
		}
		if len(w.Netns)+len(w.Inodes)+len(w.Containers) == 0 {
			return nil, fmt.Errorf("%s line %d: workload %q: needs at least one of netns, inodes, containers", name, at("", -1), w.Name)
		}
		e := &staticEntry{name: w.Name, labels: w.Labels}
		for j, n := range w.Netns {
			if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") {
				return nil, fmt.Errorf("%s line %d: workload %q: %q is not a netns name", name, at("netns", j), w.Name, n)
			}
			if err := claim("netns "+n, at("netns", j)); err != nil {
				return nil, err
			}
			s.byName[n] = e
		}
		for j, ino := range w.Inodes {
			if ino == 0 {
				return nil, fmt.Errorf("%s line %d: workload %q: inode 0 is not a namespace", name, at("inodes", j), w.Name)
			}
			if err := claim(fmt.Sprintf("inode %d", ino), at("inodes", j)); err != nil {
				return nil, err
			}
			s.byInode[ino] = e
		}
		for j, c := range w.Containers {
			c = strings.ToLower(c)
			if !isIDPrefix(c) {
				return nil, fmt.Errorf("%s line %d: workload %q: container %q is not 12 to 64 hex characters", name, at("containers", j), w.Name, c)
			}
			if err := claim("container "+c, at("containers", j)); err != nil {
				return nil, err
			}
			s.containers = append(s.containers, containerMatch{c, e})
		}
	}
	// Longest first, so that a nested prefix picks the more specific entry.
	sort.Slice(s.containers, func(a, b int) bool {
		ca, cb := s.containers[a].prefix, s.containers[b].prefix
		if len(ca) != len(cb) {
			return len(ca) > len(cb)
		}
		return ca < cb
	})
	return s, nil
}

func isIDPrefix(s string) bool {
	if len(s) < 12 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)

// yamlErr strips yaml.v3's "yaml: " prefix; its messages already say "line N: ...".
func yamlErr(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			// "line 3: field foo not found in type workload.staticYAML" → "line 3: unknown key foo"
			msgs[i] = unknownField.ReplaceAllString(m, "unknown key $1")
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

// Len is the number of matchers.
func (s *Static) Len() int { return len(s.byName) + len(s.byInode) + len(s.containers) }

// Resolve implements Resolver. Container matchers read the cgroup of the namespace's
// processes, and only when the map has any.
func (s *Static) Resolve(ns NetnsInfo) (Identity, bool) {
	if s == nil {
		return Identity{}, false
	}
	if e, ok := s.byName[ns.Name]; ok && ns.Name != "" {
		return e.identity(Identity{}), true
	}
	if e, ok := s.byInode[ns.Inode]; ok {
		return e.identity(Identity{}), true
	}
	if len(s.containers) == 0 {
		return Identity{}, false
	}
	info, _, ok := containerOf(ns)
	if !ok {
		return Identity{}, false
	}
	for _, m := range s.containers {
		if strings.HasPrefix(info.ContainerID, m.prefix) {
			return m.entry.identity(Identity{Container: info.ContainerID}), true
		}
	}
	return Identity{}, false
}

func (e *staticEntry) identity(id Identity) Identity {
	id.Name, id.Kind, id.Source = e.name, KindStatic, SourceStatic
	if len(e.labels) > 0 {
		// A copy: callers may add labels to the identity they get.
		id.Labels = make(map[string]string, len(e.labels))
		for k, v := range e.labels {
			id.Labels[k] = v
		}
	}
	return id
}

// staticLineIndex records the line of each workload entry and of each item of its lists.
type staticLineIndex struct {
	entries []staticLines1
}

type staticLines1 struct {
	line   int
	fields map[string][]int // field → line of each item (or of the value when scalar)
}

func staticLines(root *yaml.Node) staticLineIndex {
	var idx staticLineIndex
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return idx
	}
	for k := 0; k+1 < len(doc.Content); k += 2 {
		if doc.Content[k].Value != "workloads" || doc.Content[k+1].Kind != yaml.SequenceNode {
			continue
		}
		for _, item := range doc.Content[k+1].Content {
			e := staticLines1{line: item.Line, fields: map[string][]int{}}
			if item.Kind == yaml.MappingNode {
				for f := 0; f+1 < len(item.Content); f += 2 {
					key, val := item.Content[f], item.Content[f+1]
					if val.Kind == yaml.SequenceNode {
						for _, v := range val.Content {
							e.fields[key.Value] = append(e.fields[key.Value], v.Line)
						}
					} else {
						e.fields[key.Value] = []int{val.Line}
					}
				}
			}
			idx.entries = append(idx.entries, e)
		}
	}
	return idx
}

// at returns the line of item j of field in entry i, or of the entry itself (field "" or
// unknown positions).
func (x staticLineIndex) at(i int, field string, j int) int {
	if i < 0 || i >= len(x.entries) {
		return 0
	}
	e := x.entries[i]
	if ls := e.fields[field]; j >= 0 && j < len(ls) {
		return ls[j]
	}
	return e.line
}

// aliasLine returns the line of the first anchor or alias in n, or 0. It does not follow
// aliases, so its work is bounded by the size of the document.
func aliasLine(n *yaml.Node, depth int) int {
	if n == nil || depth > 10000 {
		return 0
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return max(n.Line, 1)
	}
	for _, c := range n.Content {
		if l := aliasLine(c, depth+1); l > 0 {
			return l
		}
	}
	return 0
}
