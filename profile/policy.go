package profile

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// PolicyOptions names the Kubernetes object ExportPolicy writes. Empty fields are derived
// from a Kubernetes workload identity ("k8s/NAMESPACE/KIND/NAME" as the workload package
// names it, or "NAMESPACE/KIND/NAME"): Namespace = NAMESPACE, Name = "minerguard-NAME",
// PodSelector = {app.kubernetes.io/name: NAME} (the recommended label; pass the workload's
// real selector when it differs). Other identities need Namespace and PodSelector.
type PolicyOptions struct {
	Namespace   string
	Name        string
	PodSelector map[string]string
}

// SelectorLabel is the pod label the default selector uses.
const SelectorLabel = "app.kubernetes.io/name"

// k8sIdentity splits a Kubernetes workload identity.
func k8sIdentity(w string) (ns, kind, name string, ok bool) {
	w = strings.TrimPrefix(w, "k8s/")
	parts := strings.Split(w, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

func (o PolicyOptions) resolve(workload string) (PolicyOptions, error) {
	ns, _, name, ok := k8sIdentity(workload)
	if o.Namespace == "" {
		if !ok {
			return o, fmt.Errorf("exporting policy for %s: not a Kubernetes identity (namespace/kind/name); give the namespace and pod selector", workload)
		}
		o.Namespace = ns
	}
	if len(o.PodSelector) == 0 {
		if !ok {
			return o, fmt.Errorf("exporting policy for %s: not a Kubernetes identity; give the pod selector", workload)
		}
		o.PodSelector = map[string]string{SelectorLabel: name}
	}
	if o.Name == "" {
		base := name
		if !ok {
			base = workload
		}
		o.Name = dnsLabelName("minerguard-" + base)
	}
	return o, nil
}

// dnsLabelName turns s into a valid object name (DNS-1123 subdomain: lower-case alphanumerics,
// '-', '.'; at most 253 bytes; alphanumeric at both ends).
func dnsLabelName(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-':
			b = append(b, c)
		default:
			b = append(b, '-')
		}
	}
	if len(b) > 253 {
		b = b[:253]
	}
	return strings.Trim(string(b), "-.")
}

// ExportPolicy writes the profile's entries as a Kubernetes egress policy in YAML:
//
//   - "networkpolicy" (networking.k8s.io/v1 NetworkPolicy): one egress rule per entry. Address
//     entries become an ipBlock; name entries become ipBlocks of their recorded addresses
//     (/32, /128) under a comment naming the domain (NetworkPolicy cannot name domains, so a
//     name whose address rotates beyond what was recorded will be blocked); a name with no
//     recorded address is left out with a comment. When any name entry exists, DNS (UDP and
//     TCP 53) to kube-dns (k8s-app=kube-dns in kube-system) is allowed.
//   - "ciliumnetworkpolicy" (cilium.io/v2 CiliumNetworkPolicy): toFQDNs matchName for names,
//     toCIDR for addresses, toPorts for each, and the DNS rule through Cilium's DNS proxy
//     (toEndpoints kube-dns, rules.dns matchPattern "*") that toFQDNs needs.
//
// Port 0 entries allow every port of their transport. Candidates, poisoned destinations and
// proxy tunnels' targets (reached through the proxy, whose entry is exported) are not exported.
func ExportPolicy(p Profile, format string, opt PolicyOptions) ([]byte, error) {
	opt, err := opt.resolve(p.Workload)
	if err != nil {
		return nil, err
	}
	var doc *yaml.Node
	switch format {
	case "networkpolicy":
		doc = networkPolicy(p, opt)
	case "ciliumnetworkpolicy":
		doc = ciliumPolicy(p, opt)
	default:
		return nil, fmt.Errorf("unknown policy format %q (want networkpolicy or ciliumnetworkpolicy)", format)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding policy: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding policy: %w", err)
	}
	return buf.Bytes(), nil
}

// Small builders for yaml.Node trees: the node API is what lets a rule carry a comment.
func str(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func num(n int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(n)}
}

func mapping(kv ...any) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		v, ok := kv[i+1].(*yaml.Node)
		if !ok {
			v = str(kv[i+1].(string))
		}
		m.Content = append(m.Content, str(kv[i].(string)), v)
	}
	return m
}

func seq(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Content: items}
}

func labels(m map[string]string) *yaml.Node {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := mapping()
	for _, k := range keys {
		n.Content = append(n.Content, str(k), str(m[k]))
	}
	return n
}

func metadata(p Profile, opt PolicyOptions) *yaml.Node {
	return mapping(
		"name", opt.Name,
		"namespace", opt.Namespace,
		"labels", mapping("app.kubernetes.io/managed-by", "minerguard"),
		"annotations", mapping("minerguard.io/workload", p.Workload),
	)
}

func k8sProto(p uint8) string {
	switch p {
	case UDP:
		return "UDP"
	case 132:
		return "SCTP"
	}
	return "TCP"
}

func hostPrefix(a netip.Addr) string { return netip.PrefixFrom(a, a.BitLen()).String() }

// viaProxy reports whether e is a proxy tunnel's target (the engine records those with the
// tunnel's kind as app): the workload reaches it through its proxy, whose own entry is what a
// network policy must allow; allowing the target would open a path the workload never took.
func viaProxy(e Entry) bool {
	switch e.App {
	case "socks5", "socks4", "http-connect":
		return true
	}
	return false
}

// leaveOut notes under egress that e was not exported, and why.
func leaveOut(egress *yaml.Node, e Entry, why string) {
	egress.FootComment = strings.TrimPrefix(egress.FootComment+"\n", "\n") + "# left out: " + e.String() + " (" + why + ")"
}

func networkPolicy(p Profile, opt PolicyOptions) *yaml.Node {
	egress := seq()
	names := false
	for _, e := range p.Entries {
		if viaProxy(e) {
			leaveOut(egress, e, "reached through a "+e.App+" proxy")
			continue
		}
		port := mapping("protocol", k8sProto(e.Proto))
		if e.Port != 0 {
			port.Content = append(port.Content, str("port"), num(int(e.Port)))
		}
		var to []*yaml.Node
		comment := ""
		if e.Name != "" {
			names = true
			for _, ip := range e.IPs {
				to = append(to, mapping("ipBlock", mapping("cidr", hostPrefix(ip))))
			}
			comment = e.String() + " (addresses recorded for " + e.Name + ")"
			if len(to) == 0 {
				// Not an empty "to", which would allow every destination.
				leaveOut(egress, e, "no address recorded for the name")
				continue
			}
		} else {
			to = append(to, mapping("ipBlock", mapping("cidr", e.Addr.String())))
			comment = e.String()
		}
		if e.App != "" {
			comment += " app " + e.App
		}
		rule := mapping("to", seq(to...), "ports", seq(port))
		rule.HeadComment = comment
		egress.Content = append(egress.Content, rule)
	}
	if names {
		dns := mapping(
			"to", seq(mapping(
				"namespaceSelector", mapping("matchLabels", mapping("kubernetes.io/metadata.name", "kube-system")),
				"podSelector", mapping("matchLabels", mapping("k8s-app", "kube-dns")),
			)),
			"ports", seq(mapping("protocol", "UDP", "port", num(53)), mapping("protocol", "TCP", "port", num(53))),
		)
		dns.HeadComment = "DNS, so the names above can be resolved"
		egress.Content = append(egress.Content, dns)
	}
	return mapping(
		"apiVersion", "networking.k8s.io/v1",
		"kind", "NetworkPolicy",
		"metadata", metadata(p, opt),
		"spec", mapping(
			"podSelector", mapping("matchLabels", labels(opt.PodSelector)),
			"policyTypes", seq(str("Egress")),
			"egress", egress,
		),
	)
}

func ciliumPorts(e Entry) *yaml.Node {
	proto := "TCP"
	switch e.Proto {
	case UDP:
		proto = "UDP"
	case 132:
		proto = "SCTP"
	}
	return seq(mapping("ports", seq(mapping("port", strconv.Itoa(int(e.Port)), "protocol", proto))))
}

func ciliumPolicy(p Profile, opt PolicyOptions) *yaml.Node {
	egress := seq()
	names := false
	for _, e := range p.Entries {
		if viaProxy(e) {
			leaveOut(egress, e, "reached through a "+e.App+" proxy")
			continue
		}
		var rule *yaml.Node
		if e.Name != "" {
			names = true
			sel := "matchName"
			if strings.Contains(e.Name, "*") {
				sel = "matchPattern"
			}
			rule = mapping("toFQDNs", seq(mapping(sel, e.Name)), "toPorts", ciliumPorts(e))
		} else {
			rule = mapping("toCIDR", seq(str(e.Addr.String())), "toPorts", ciliumPorts(e))
		}
		rule.HeadComment = e.String()
		if e.App != "" {
			rule.HeadComment += " app " + e.App
		}
		egress.Content = append(egress.Content, rule)
	}
	if names {
		dns := mapping(
			"toEndpoints", seq(mapping("matchLabels", mapping(
				"k8s:io.kubernetes.pod.namespace", "kube-system",
				"k8s:k8s-app", "kube-dns",
			))),
			"toPorts", seq(mapping(
				"ports", seq(mapping("port", "53", "protocol", "ANY")),
				"rules", mapping("dns", seq(mapping("matchPattern", "*"))),
			)),
		)
		dns.HeadComment = "DNS through Cilium's DNS proxy: toFQDNs learns addresses from these answers"
		egress.Content = append([]*yaml.Node{dns}, egress.Content...)
	}
	return mapping(
		"apiVersion", "cilium.io/v2",
		"kind", "CiliumNetworkPolicy",
		"metadata", metadata(p, opt),
		"spec", mapping(
			"endpointSelector", mapping("matchLabels", labels(opt.PodSelector)),
			"egress", egress,
		),
	)
}
