package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// DefaultClientIPHeader is the header a trusted proxy names the client in
// when Config.ClientIPHeader is empty.
const DefaultClientIPHeader = "X-Forwarded-For"

// clientIP returns the address the per-IP limits count a request under.
// It is the socket's remote address, unless that peer is a trusted proxy:
// then the proxy header's hops are read right to left, skipping trusted
// proxies, and the first untrusted hop is the client. Hops left of it were
// written by the client and are never believed. A hop that does not parse
// ends the walk at the last trusted hop; a header of trusted hops only
// names its left-most one.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !s.trusted(peer) {
		return host
	}
	var hops []string
	for _, v := range r.Header.Values(s.cfg.ClientIPHeader) {
		for h := range strings.SplitSeq(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := parseHop(hops[i])
		if err != nil {
			break
		}
		client = a
		if !s.trusted(a) {
			break
		}
	}
	return client.String()
}

// trusted reports whether a is in a trusted proxy prefix.
func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop parses one hop of a forwarding header: an address, possibly
// with a port or in brackets.
func parseHop(h string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(strings.Trim(h, "[]"))
	return a.Unmap(), err
}

// ParsePrefixes parses a comma-separated list of CIDR prefixes and single
// addresses (taken as /32 or /128), as --trusted-proxies gives them.
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
