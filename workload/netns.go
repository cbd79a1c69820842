package workload

// NamedNetns names a namespace created with `ip netns add NAME` as "netns/NAME".
type NamedNetns struct{}

// Resolve implements Resolver.
func (NamedNetns) Resolve(ns NetnsInfo) (Identity, bool) {
	if ns.Name == "" {
		return Identity{}, false
	}
	return Identity{Name: "netns/" + ns.Name, Kind: KindNetns, Source: SourceNetns}, true
}
