package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/minerguard/minerguard/internal/structured"

	"gopkg.in/yaml.v3"
)

// The file format (YAML or JSON, same fields) written by Encode and read by Decode. The bbolt
// state stores one wireProfile as JSON per workload, so both go through the same checks.
type wireFile struct {
	Kind     string        `json:"kind" yaml:"kind"`
	Profiles []wireProfile `json:"profiles" yaml:"profiles"`
}

type wireProfile struct {
	Workload   string      `json:"workload" yaml:"workload"`
	State      string      `json:"state" yaml:"state"`
	Since      string      `json:"since,omitempty" yaml:"since,omitempty"`
	LastNew    string      `json:"lastNew,omitempty" yaml:"lastNew,omitempty"`
	Flows      uint64      `json:"flows,omitempty" yaml:"flows,omitempty"`
	Image      string      `json:"image,omitempty" yaml:"image,omitempty"`
	Entries    []wireEntry `json:"entries" yaml:"entries"`
	Candidates []wireEntry `json:"candidates,omitempty" yaml:"candidates,omitempty"`
	Poisoned   []string    `json:"poisoned,omitempty" yaml:"poisoned,omitempty"`
}

type wireEntry struct {
	Name  string   `json:"name,omitempty" yaml:"name,omitempty"`
	Addr  string   `json:"addr,omitempty" yaml:"addr,omitempty"`
	Port  uint16   `json:"port" yaml:"port"`
	Proto string   `json:"proto" yaml:"proto"`
	App   string   `json:"app,omitempty" yaml:"app,omitempty"`
	IPs   []string `json:"ips,omitempty" yaml:"ips,omitempty,flow"`
	First string   `json:"first,omitempty" yaml:"first,omitempty"`
	Seen  []string `json:"seen,omitempty" yaml:"seen,omitempty,flow"`
}

// fileKind marks our export files.
const fileKind = "MinerguardProfiles"

// Decode limits: hostile files are refused before they cost more than a bounded amount of
// memory (about 150 MiB at worst, measured). YAML is also limited in items (maxYAMLTokens)
// because yaml.v3 builds a node tree of ~150 bytes per node.
const (
	MaxDecodeJSON    = 8 << 20
	MaxDecodeYAML    = 4 << 20
	maxDecodeItems   = 100000 // profiles, entries per profile, addresses per entry
	maxStringLen     = 1024
	timeFormat       = time.RFC3339Nano
	maxSeenPerEntry  = 1024
	maxAppLen        = 32
	maxImageLen      = 1024
	maxPoisonedInput = maxDecodeItems
)

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFormat)
}

func parseTime(s, what string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: not an RFC 3339 time", what, s)
	}
	return norm(t), nil
}

func toWireEntries(es []Entry) []wireEntry {
	out := make([]wireEntry, 0, len(es))
	for _, e := range es {
		w := wireEntry{Name: e.Name, Port: e.Port, Proto: ProtoName(e.Proto), App: e.App, First: fmtTime(e.First), Seen: e.Seen}
		if e.Name == "" {
			w.Addr = e.Addr.String()
		}
		for _, ip := range e.IPs {
			w.IPs = append(w.IPs, ip.String())
		}
		out = append(out, w)
	}
	return out
}

func toWire(p Profile) wireProfile {
	w := wireProfile{Workload: p.Workload, State: p.State.String(), Since: fmtTime(p.Since), LastNew: fmtTime(p.LastNew),
		Flows: p.Flows, Image: p.Image, Entries: toWireEntries(p.Entries), Poisoned: p.Poisoned}
	if len(p.Candidates) > 0 {
		w.Candidates = toWireEntries(p.Candidates)
	}
	return w
}

func fromWireEntries(ws []wireEntry, what string) ([]Entry, error) {
	if len(ws) > maxDecodeItems {
		return nil, fmt.Errorf("%d %s: more than %d", len(ws), what, maxDecodeItems)
	}
	var out []Entry
	for i, w := range ws {
		where := fmt.Sprintf("%s %d", map[string]string{"entries": "entry", "candidates": "candidate"}[what], i+1)
		var e Entry
		switch {
		case w.Name != "" && w.Addr != "":
			return nil, fmt.Errorf("%s: has both name and addr", where)
		case w.Name != "":
			e.Name = normName(w.Name)
			if !validName(e.Name) {
				return nil, fmt.Errorf("%s: name %q is not a domain name", where, trunc(w.Name))
			}
		case w.Addr != "":
			pf, err := netip.ParsePrefix(w.Addr)
			if err != nil {
				a, err2 := netip.ParseAddr(w.Addr)
				if err2 != nil {
					return nil, fmt.Errorf("%s: addr %q is not an address or CIDR", where, trunc(w.Addr))
				}
				a = a.Unmap()
				pf = netip.PrefixFrom(a, a.BitLen())
			}
			e.Addr = pf.Masked()
		default:
			return nil, fmt.Errorf("%s: needs name or addr", where)
		}
		proto, err := ParseProto(w.Proto)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		e.Port, e.Proto = w.Port, proto
		if len(w.App) > maxAppLen {
			return nil, fmt.Errorf("%s: app longer than %d bytes", where, maxAppLen)
		}
		e.App = w.App
		if e.First, err = parseTime(w.First, where+": first"); err != nil {
			return nil, err
		}
		if len(w.IPs) > maxDecodeItems {
			return nil, fmt.Errorf("%s: %d ips, more than %d", where, len(w.IPs), maxDecodeItems)
		}
		if len(w.IPs) > 0 && e.Name == "" {
			return nil, fmt.Errorf("%s: ips belong to name entries only", where)
		}
		for _, s := range w.IPs {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%s: ip %q is not an address", where, trunc(s))
			}
			e.IPs = append(e.IPs, a.Unmap())
		}
		if len(w.Seen) > maxSeenPerEntry {
			return nil, fmt.Errorf("%s: seen from more than %d replicas", where, maxSeenPerEntry)
		}
		for _, s := range w.Seen {
			if len(s) > maxStringLen {
				return nil, fmt.Errorf("%s: replica name longer than %d bytes", where, maxStringLen)
			}
		}
		e.Seen = w.Seen
		out = append(out, e)
	}
	return out, nil
}

func fromWire(w wireProfile) (Profile, error) {
	if w.Workload == "" || len(w.Workload) > maxWorkloadLen {
		return Profile{}, fmt.Errorf("workload %q: must be 1 to %d bytes", trunc(w.Workload), maxWorkloadLen)
	}
	p := Profile{Workload: w.Workload, Flows: w.Flows, Image: w.Image}
	wrap := func(err error) error { return fmt.Errorf("profile %s: %w", trunc(w.Workload), err) }
	var err error
	if p.State, err = ParseState(w.State); err != nil {
		return Profile{}, wrap(err)
	}
	if p.Since, err = parseTime(w.Since, "since"); err != nil {
		return Profile{}, wrap(err)
	}
	if p.LastNew, err = parseTime(w.LastNew, "lastNew"); err != nil {
		return Profile{}, wrap(err)
	}
	if len(w.Image) > maxImageLen {
		return Profile{}, wrap(fmt.Errorf("image longer than %d bytes", maxImageLen))
	}
	if p.Entries, err = fromWireEntries(w.Entries, "entries"); err != nil {
		return Profile{}, wrap(err)
	}
	if p.Candidates, err = fromWireEntries(w.Candidates, "candidates"); err != nil {
		return Profile{}, wrap(err)
	}
	if len(w.Poisoned) > maxPoisonedInput {
		return Profile{}, wrap(fmt.Errorf("%d poisoned, more than %d", len(w.Poisoned), maxPoisonedInput))
	}
	for _, s := range w.Poisoned {
		if _, _, err := parseDeny(s); err != nil {
			return Profile{}, wrap(fmt.Errorf("poisoned %q: not a name, address or prefix", trunc(s)))
		}
	}
	p.Poisoned = w.Poisoned
	sortEntries(p.Entries)
	sortEntries(p.Candidates)
	return p, nil
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Encode writes profiles as "yaml", "json" (both re-readable by Decode) or "text" (for people).
func Encode(w io.Writer, ps []Profile, format string) error {
	switch format {
	case "yaml", "json":
		f := wireFile{Kind: fileKind, Profiles: make([]wireProfile, 0, len(ps))}
		for _, p := range ps {
			f.Profiles = append(f.Profiles, toWire(p))
		}
		return structured.Write(w, format, f)
	case "text":
		for i, p := range ps {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "%s: %s since %s, %d entries\n", p.Workload, p.State, fmtTime(p.Since), len(p.Entries))
			tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
			for _, e := range p.Entries {
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", e, e.App, joinIPs(e.IPs, 8))
			}
			for _, e := range p.Candidates {
				fmt.Fprintf(tw, "  (candidate) %s\t%s\tseen from %d\n", e, e.App, len(e.Seen))
			}
			for _, s := range p.Poisoned {
				fmt.Fprintf(tw, "  (poisoned) %s\n", s)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown profile format %q (want yaml, json or text)", format)
}

func joinIPs(ips []netip.Addr, max int) string {
	var sb strings.Builder
	for i, ip := range ips {
		if i == max {
			sb.WriteString(" +" + strconv.Itoa(len(ips)-max) + " more")
			break
		}
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(ip.String())
	}
	return sb.String()
}

// Decode reads profiles written by Encode in YAML or JSON. It is meant for files from
// anywhere: input is size-capped (MaxDecodeJSON, MaxDecodeYAML), YAML anchors and aliases
// are refused (a small aliased file can expand without bound), unknown fields are errors, and
// every value is checked. Workloads must be unique.
func Decode(r io.Reader) ([]Profile, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxDecodeJSON+1))
	if err != nil {
		return nil, fmt.Errorf("reading profiles: %w", err)
	}
	if len(data) > MaxDecodeJSON {
		return nil, fmt.Errorf("profiles file is larger than %d MiB", MaxDecodeJSON>>20)
	}
	var f wireFile
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("decoding profiles (JSON): %w", shortErr(err))
		}
		if dec.More() {
			return nil, errors.New("decoding profiles (JSON): data after the top-level object")
		}
	} else {
		if len(data) > MaxDecodeYAML {
			return nil, fmt.Errorf("profiles file is larger than %d MiB of YAML; use JSON for bigger files", MaxDecodeYAML>>20)
		}
		if err := decodeYAML(data, &f); err != nil {
			return nil, err
		}
	}
	if f.Kind != fileKind {
		return nil, fmt.Errorf("not a profiles file: kind is %q, want %q", trunc(f.Kind), fileKind)
	}
	if len(f.Profiles) > maxDecodeItems {
		return nil, fmt.Errorf("%d profiles, more than %d", len(f.Profiles), maxDecodeItems)
	}
	out := make([]Profile, 0, len(f.Profiles))
	seen := map[string]bool{}
	for _, w := range f.Profiles {
		p, err := fromWire(w)
		if err != nil {
			return nil, err
		}
		if seen[p.Workload] {
			return nil, fmt.Errorf("profile %s appears twice", trunc(p.Workload))
		}
		seen[p.Workload] = true
		out = append(out, p)
	}
	return out, nil
}

func decodeYAML(data []byte, f *wireFile) error {
	// yaml.v3 builds a node tree first (~150 bytes a node, and a node can cost 2 bytes of
	// input): bound the nodes by counting the bytes that can start or separate one.
	if n := bytes.Count(data, []byte("\n")) + countAny(data, ",:-[{"); n > maxYAMLTokens {
		return fmt.Errorf("decoding profiles (YAML): more than %d items; use JSON for big files", maxYAMLTokens)
	}
	var n, extra yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&n); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("decoding profiles (YAML): %w", shortErr(err))
	}
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("decoding profiles (YAML): more than one document")
	}
	if err := noAliases(&n, 0); err != nil {
		return err
	}
	if len(n.Content) == 0 {
		return nil
	}
	if err := knownFields(n.Content[0], reflect.TypeOf(f).Elem()); err != nil {
		return fmt.Errorf("decoding profiles (YAML): %w", err)
	}
	if err := n.Decode(f); err != nil {
		return fmt.Errorf("decoding profiles (YAML): %w", shortErr(err))
	}
	return nil
}

const maxYAMLTokens = 100000

func countAny(b []byte, chars string) int {
	n := 0
	for _, c := range b {
		if strings.IndexByte(chars, c) >= 0 {
			n++
		}
	}
	return n
}

// shortErr keeps the first lines of yaml's error, which lists every bad value.
func shortErr(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 3 {
		return fmt.Errorf("%s (and %d more)", strings.Join(te.Errors[:3], "; "), len(te.Errors)-3)
	}
	return err
}

// knownFields refuses mapping keys that are not fields of the struct the mapping decodes
// into (what Decoder.KnownFields does, without parsing the input a second time).
func knownFields(n *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			ft, ok := yamlField(t, k)
			if !ok {
				return fmt.Errorf("line %d: field %s not found in type %s", n.Content[i].Line, trunc(k), t.Name())
			}
			if err := knownFields(n.Content[i+1], ft); err != nil {
				return err
			}
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for _, c := range n.Content {
			if err := knownFields(c, t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}

func yamlField(t reflect.Type, key string) (reflect.Type, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key {
			return f.Type, true
		}
	}
	return nil, false
}

func noAliases(n *yaml.Node, depth int) error {
	if depth > 32 {
		return fmt.Errorf("decoding profiles (YAML): nested deeper than 32 at line %d", n.Line)
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return fmt.Errorf("decoding profiles (YAML): anchors and aliases are not allowed (line %d)", n.Line)
	}
	for _, c := range n.Content {
		if err := noAliases(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}
