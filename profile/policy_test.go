package profile

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

func policyProfile() Profile {
	return Profile{Workload: "k8s/shop/Deployment/web", State: Enforcing, Entries: []Entry{
		{Dest: Dest{Name: "api.example", Port: 443, Proto: TCP, App: "tls"}, IPs: []netip.Addr{ip("192.0.2.1"), ip("2001:db8::1")}},
		{Dest: Dest{Name: "norecord.example", Port: 443, Proto: TCP}},
		{Dest: Dest{Addr: netip.MustParsePrefix("10.1.0.0/16"), Port: 5432, Proto: TCP}},
		{Dest: Dest{Addr: netip.MustParsePrefix("192.0.2.53/32"), Proto: UDP}},
		// Reached through a proxy (issue 15): not a network destination of the pod.
		{Dest: Dest{Name: "edge.telemetry-cdn.example", Port: 443, Proto: TCP, App: "socks5"}},
		{Dest: Dest{Addr: netip.MustParsePrefix("198.51.100.7/32"), Port: 443, Proto: TCP, App: "http-connect"}},
	}}
}

func TestExportNetworkPolicy(t *testing.T) {
	out, err := ExportPolicy(policyProfile(), "networkpolicy", PolicyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var np netv1.NetworkPolicy
	if err := yaml.UnmarshalStrict(out, &np); err != nil {
		t.Fatalf("not a valid NetworkPolicy: %v\n%s", err, out)
	}
	if strings.Count(string(out), "198.51.100.7") != 1 || !strings.Contains(string(out), "left out: 198.51.100.7:443/tcp (reached through a http-connect proxy)") {
		t.Errorf("a proxy target was exported:\n%s", out)
	}
	if np.APIVersion != "networking.k8s.io/v1" || np.Kind != "NetworkPolicy" || np.Name != "minerguard-web" || np.Namespace != "shop" {
		t.Errorf("object %s %s %s/%s", np.APIVersion, np.Kind, np.Namespace, np.Name)
	}
	if np.Annotations["minerguard.io/workload"] != "k8s/shop/Deployment/web" {
		t.Errorf("annotations %v", np.Annotations)
	}
	if !reflect.DeepEqual(np.Spec.PodSelector.MatchLabels, map[string]string{"app.kubernetes.io/name": "web"}) {
		t.Errorf("pod selector %v", np.Spec.PodSelector)
	}
	if !reflect.DeepEqual(np.Spec.PolicyTypes, []netv1.PolicyType{netv1.PolicyTypeEgress}) {
		t.Errorf("policy types %v", np.Spec.PolicyTypes)
	}
	type rule struct {
		cidrs []string
		ports []string
	}
	var got []rule
	for _, r := range np.Spec.Egress {
		var x rule
		for _, p := range r.To {
			if p.IPBlock != nil {
				x.cidrs = append(x.cidrs, p.IPBlock.CIDR)
			} else if p.NamespaceSelector != nil && p.PodSelector != nil {
				x.cidrs = append(x.cidrs, "ns="+p.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]+",pod="+p.PodSelector.MatchLabels["k8s-app"])
			}
		}
		for _, p := range r.Ports {
			s := string(*p.Protocol)
			if p.Port != nil {
				s += "/" + p.Port.String()
			}
			x.ports = append(x.ports, s)
		}
		got = append(got, x)
	}
	want := []rule{
		{[]string{"192.0.2.1/32", "2001:db8::1/128"}, []string{"TCP/443"}},
		{[]string{"10.1.0.0/16"}, []string{"TCP/5432"}},
		{[]string{"192.0.2.53/32"}, []string{"UDP"}}, // any port
		{[]string{"ns=kube-system,pod=kube-dns"}, []string{"UDP/53", "TCP/53"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("egress rules\n got %+v\nwant %+v\n%s", got, want, out)
	}
	if *np.Spec.Egress[0].Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("protocol %v", *np.Spec.Egress[0].Ports[0].Protocol)
	}
	for _, c := range []string{"# api.example:443/tcp (addresses recorded for api.example) app tls", "# left out: norecord.example:443/tcp"} {
		if !strings.Contains(string(out), c) {
			t.Errorf("output lacks the comment %q:\n%s", c, out)
		}
	}

	// Only addresses: no DNS rule; explicit options win.
	p := Profile{Workload: "netns/db", Entries: policyProfile().Entries[2:3]}
	if _, err := ExportPolicy(p, "networkpolicy", PolicyOptions{}); err == nil {
		t.Error("non-Kubernetes identity exported without a namespace")
	}
	out, err = ExportPolicy(p, "networkpolicy", PolicyOptions{Namespace: "data", PodSelector: map[string]string{"role": "db"}})
	if err != nil {
		t.Fatal(err)
	}
	np = netv1.NetworkPolicy{}
	if err := yaml.UnmarshalStrict(out, &np); err != nil {
		t.Fatal(err)
	}
	if len(np.Spec.Egress) != 1 || np.Name != "minerguard-netns-db" || np.Namespace != "data" || np.Spec.PodSelector.MatchLabels["role"] != "db" {
		t.Errorf("address-only policy: %+v", np)
	}
	if _, err := ExportPolicy(p, "iptables", PolicyOptions{Namespace: "x", PodSelector: map[string]string{"a": "b"}}); err == nil {
		t.Error("unknown format accepted")
	}
}

// A mirror of the CiliumNetworkPolicy (cilium.io/v2) fields we write; strict decoding fails on
// anything else.
type cnp struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		EndpointSelector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"endpointSelector"`
		Egress []struct {
			ToEndpoints []struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"toEndpoints"`
			ToFQDNs []struct {
				MatchName    string `json:"matchName"`
				MatchPattern string `json:"matchPattern"`
			} `json:"toFQDNs"`
			ToCIDR  []string `json:"toCIDR"`
			ToPorts []struct {
				Ports []struct {
					Port     string `json:"port"`
					Protocol string `json:"protocol"`
				} `json:"ports"`
				Rules *struct {
					DNS []struct {
						MatchPattern string `json:"matchPattern"`
					} `json:"dns"`
				} `json:"rules"`
			} `json:"toPorts"`
		} `json:"egress"`
	} `json:"spec"`
}

func TestExportCiliumNetworkPolicy(t *testing.T) {
	out, err := ExportPolicy(policyProfile(), "ciliumnetworkpolicy", PolicyOptions{Name: "custom"})
	if err != nil {
		t.Fatal(err)
	}
	var p cnp
	if err := yaml.UnmarshalStrict(out, &p); err != nil {
		t.Fatalf("not our CiliumNetworkPolicy shape: %v\n%s", err, out)
	}
	if p.APIVersion != "cilium.io/v2" || p.Kind != "CiliumNetworkPolicy" || p.Metadata.Name != "custom" || p.Metadata.Namespace != "shop" ||
		p.Spec.EndpointSelector.MatchLabels["app.kubernetes.io/name"] != "web" {
		t.Errorf("object %+v", p.Metadata)
	}
	eg := p.Spec.Egress
	if len(eg) != 5 {
		t.Fatalf("%d egress rules, want DNS + 4 (not the 2 proxy targets):\n%s", len(eg), out)
	}
	if !strings.Contains(string(out), "left out: edge.telemetry-cdn.example:443/tcp (reached through a socks5 proxy)") ||
		!strings.Contains(string(out), "left out: 198.51.100.7:443/tcp (reached through a http-connect proxy)") {
		t.Errorf("the proxy targets are not said to be left out:\n%s", out)
	}
	dns := eg[0]
	if len(dns.ToEndpoints) != 1 || dns.ToEndpoints[0].MatchLabels["k8s:k8s-app"] != "kube-dns" ||
		dns.ToEndpoints[0].MatchLabels["k8s:io.kubernetes.pod.namespace"] != "kube-system" ||
		dns.ToPorts[0].Ports[0].Port != "53" || dns.ToPorts[0].Ports[0].Protocol != "ANY" ||
		dns.ToPorts[0].Rules == nil || dns.ToPorts[0].Rules.DNS[0].MatchPattern != "*" {
		t.Errorf("DNS rule %+v", dns)
	}
	if eg[1].ToFQDNs[0].MatchName != "api.example" || eg[1].ToPorts[0].Ports[0].Port != "443" || eg[1].ToPorts[0].Ports[0].Protocol != "TCP" {
		t.Errorf("name rule %+v", eg[1])
	}
	if eg[2].ToFQDNs[0].MatchName != "norecord.example" { // toFQDNs needs no recorded address
		t.Errorf("name rule %+v", eg[2])
	}
	if !reflect.DeepEqual(eg[3].ToCIDR, []string{"10.1.0.0/16"}) || eg[3].ToPorts[0].Ports[0].Port != "5432" {
		t.Errorf("cidr rule %+v", eg[3])
	}
	if !reflect.DeepEqual(eg[4].ToCIDR, []string{"192.0.2.53/32"}) || eg[4].ToPorts[0].Ports[0].Port != "0" || eg[4].ToPorts[0].Ports[0].Protocol != "UDP" {
		t.Errorf("cidr rule %+v", eg[4])
	}
}
