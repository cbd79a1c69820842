package dns

import "net/netip"

// maxChain bounds CNAME chain length. Resolvers give up far earlier (BIND
// follows 16 links), so a longer chain is not one a client acted on.
const maxChain = 16

// AddrName ties an answered address to the name the client asked for.
type AddrName struct {
	Addr netip.Addr
	// Name is the queried (question) name, even when the address record's
	// owner is the end of a CNAME chain: a flow to Addr was made because the
	// client looked up Name.
	Name string
	// CNAMEs are the alias targets followed from Name to the address
	// record's owner, in order; empty when the address is answered directly.
	CNAMEs []string
	// TTL is the smallest TTL along the chain: the mapping is only as fresh
	// as its least fresh link.
	TTL uint32
}

// AddrNames returns one entry per A/AAAA answer that is reachable from a
// question name through the answer section's CNAME records. Address records
// not linked to any question (unsolicited data a stub resolver would not
// use for this query) are left out, as is everything in queries and
// unsuccessful responses. Chains are followed at most maxChain steps, so a
// CNAME loop cannot spin and the work stays linear in the answer count.
func (m Message) AddrNames() []AddrName { return m.appendAddrNames(nil, nil) }

// appendAddrNames appends m's AddrNames to out. The CNAME chains are copied into *chains
// when it is not nil (a Parser's buffer, reused: the chains are valid until its next use),
// else each into a slice of its own.
func (m *Message) appendAddrNames(out []AddrName, chains *[]string) []AddrName {
	if !m.Response || m.Rcode != 0 || len(m.Answers) == 0 || len(m.Questions) == 0 {
		return out
	}
	for _, q := range m.Questions {
		// Walk the chain forward from the question name. Each step picks the
		// first CNAME owned by the current name, as resolvers do.
		name := q.Name
		minTTL := ^uint32(0)
		var chain []string
		for step := 0; ; step++ {
			for _, a := range m.Answers {
				if a.Addr.IsValid() && a.Name == name {
					out = append(out, AddrName{
						Addr:   a.Addr.Unmap(),
						Name:   q.Name,
						CNAMEs: chain,
						TTL:    min(minTTL, a.TTL),
					})
				}
			}
			next, ttl, ok := cnameOf(m.Answers, name)
			if !ok || step >= maxChain {
				break
			}
			// Copy on extend so earlier entries keep their own (shorter) view.
			if chains != nil {
				start := len(*chains)
				*chains = append(append(*chains, chain...), next)
				chain = (*chains)[start:len(*chains):len(*chains)]
			} else {
				chain = append(chain[:len(chain):len(chain)], next)
			}
			minTTL = min(minTTL, ttl)
			name = next
		}
	}
	return out
}

func cnameOf(answers []Answer, name string) (target string, ttl uint32, ok bool) {
	for _, a := range answers {
		if a.Target != "" && a.Name == name {
			return a.Target, a.TTL, true
		}
	}
	return "", 0, false
}
