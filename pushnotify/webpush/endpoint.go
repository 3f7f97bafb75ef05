package webpush

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrEndpointRefused is returned for an endpoint the EndpointPolicy does
// not allow: not https, a host off the allow-list, or an address that is
// not public. register_device answers it with bad_request; a send to such
// an endpoint fails without a byte sent.
var ErrEndpointRefused = errors.New("webpush: endpoint refused")

// DefaultAllowHosts are the push services of the big browsers, the only
// endpoints allowed unless EndpointPolicy.AllowHosts says otherwise:
// Google's FCM (Chrome, Opera, Brave, Samsung Internet), Mozilla's
// autopush (Firefox), Microsoft's WNS (Edge) and Apple's (Safari, which
// documents *.push.apple.com; its endpoints are web.push.apple.com).
var DefaultAllowHosts = []string{
	"fcm.googleapis.com",
	"updates.push.services.mozilla.com",
	"*.notify.windows.com",
	"*.push.apple.com",
}

// AnyPublicHost in EndpointPolicy.AllowHosts allows every host whose
// addresses are all public.
const AnyPublicHost = "*"

// EndpointPolicy says which Web Push endpoints the server POSTs to. An
// endpoint comes from a client, so without a policy anyone could make the
// server send requests into its own network (SSRF). The zero value is the
// safe default: https, a host in DefaultAllowHosts, public addresses only.
type EndpointPolicy struct {
	// AllowHosts lists the allowed host names: "push.example.com" exactly,
	// "*.example.com" for any name under example.com, AnyPublicHost for
	// every host. Empty means DefaultAllowHosts.
	AllowHosts []string
	// AllowPrivate allows loopback, private and other non-public
	// addresses. Only tests set it, to reach a local push service; never
	// set it in production.
	AllowPrivate bool
	// Resolver resolves host names at registration (default
	// net.DefaultResolver).
	Resolver *net.Resolver
}

// allowedHost reports whether host (lower case, no port) is on the list.
func (p *EndpointPolicy) allowedHost(host string) bool {
	list := p.AllowHosts
	if len(list) == 0 {
		list = DefaultAllowHosts
	}
	for _, pat := range list {
		pat = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(pat), "."))
		switch {
		case pat == AnyPublicHost:
			return true
		case strings.HasPrefix(pat, "*."):
			if suffix := pat[1:]; strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
				return true
			}
		case pat == host:
			return true
		}
	}
	return false
}

// allowedAddr reports whether the server may connect to a.
func (p *EndpointPolicy) allowedAddr(a netip.Addr) bool {
	return p.AllowPrivate || PublicAddr(a)
}

// PublicAddr reports whether a is a public unicast address: not
// unspecified, loopback, private (RFC 1918, fc00::/7), link-local (which
// holds the cloud metadata service 169.254.169.254), multicast, shared
// (CGNAT 100.64.0.0/10) or reserved, IPv4-mapped and NAT64 forms included.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.Zone() != "" || !a.IsGlobalUnicast() ||
		a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// nonPublic are the ranges IsGlobalUnicast and friends leave in that a
// push service never lives on.
var nonPublic = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network"
		"100.64.0.0/10",   // shared address space, CGNAT (RFC 6598)
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // TEST-NET-1
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // TEST-NET-2
		"203.0.113.0/24",  // TEST-NET-3
		"240.0.0.0/4",     // reserved, broadcast
		"64:ff9b::/96",    // NAT64: would reach any IPv4 address
		"64:ff9b:1::/48",  // local-use NAT64
		"100::/64",        // discard
		"2001::/23",       // IETF protocol assignments (Teredo included)
		"2001:db8::/32",   // documentation
		"2002::/16",       // 6to4: embeds an IPv4 address
		"fec0::/10",       // deprecated site-local
		"::ffff:0:0:0/96", // SIIT IPv4-translated
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// checkURL checks what the endpoint URL says, without resolving: https,
// no user info, an allowed host and, for an address literal, a public
// address. It returns the host.
func (p *EndpointPolicy) checkURL(u *url.URL) (string, error) {
	if u.Scheme != "https" || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("%w: not an https URL", ErrEndpointRefused)
	}
	if u.User != nil {
		return "", fmt.Errorf("%w: user info in the URL", ErrEndpointRefused)
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "" {
		return "", fmt.Errorf("%w: no host", ErrEndpointRefused)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !p.allowedAddr(a) {
			return "", fmt.Errorf("%w: %s is not a public address", ErrEndpointRefused, host)
		}
	}
	if !p.allowedHost(host) {
		return "", fmt.Errorf("%w: host %s is not a known push service", ErrEndpointRefused, host)
	}
	return host, nil
}

// Check checks an endpoint as register_device does: the URL's rules, then
// every address its host resolves to must be public. The sender checks
// the address again when it connects, since DNS may answer differently
// later. Errors match ErrEndpointRefused.
func (p *EndpointPolicy) Check(ctx context.Context, endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("%w: not a URL", ErrEndpointRefused)
	}
	host, err := p.checkURL(u)
	if err != nil {
		return err
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil // checked by checkURL
	}
	r := p.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("%w: host %s does not resolve", ErrEndpointRefused, host)
	}
	for _, a := range addrs {
		if !p.allowedAddr(a) {
			return fmt.Errorf("%w: host %s resolves to %s, not a public address", ErrEndpointRefused, host, a.Unmap())
		}
	}
	return nil
}

// control is a net.Dialer Control: it refuses a connection to an address
// the policy does not allow, before the connection is made, whatever DNS
// answered when the endpoint was registered.
func (p *EndpointPolicy) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: dial %s %s", ErrEndpointRefused, network, address)
	}
	if !p.allowedAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s is not a public address", ErrEndpointRefused, ap.Addr().Unmap())
	}
	return nil
}

// checkConn checks the address a dial connected to: the guard for dial
// functions that are not a net.Dialer with control.
func (p *EndpointPolicy) checkConn(c net.Conn) error {
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return fmt.Errorf("%w: connected to a %s address", ErrEndpointRefused, c.RemoteAddr().Network())
	}
	if !p.allowedAddr(ta.AddrPort().Addr()) {
		return fmt.Errorf("%w: connected to %s, not a public address", ErrEndpointRefused, ta.IP)
	}
	return nil
}

// Client returns a copy of c guarded like the Web Push sender's (see
// guardClient): no redirects, no proxy, every connection's address
// checked against p. The webhook dispatcher (services/webhook) POSTs
// through it, so webhooks follow the same SSRF rules as Web Push.
func (p *EndpointPolicy) Client(c *http.Client) (*http.Client, error) { return p.guardClient(c) }

// guardClient returns a copy of c (nil: a new client with a 30 s timeout)
// that never follows redirects and whose every connection is checked
// against the policy. Its Transport must be an *http.Transport (or nil).
func (p *EndpointPolicy) guardClient(c *http.Client) (*http.Client, error) {
	var guarded http.Client
	if c != nil {
		guarded = *c
	} else {
		guarded.Timeout = 30 * time.Second
	}
	// A redirect could send the POST, VAPID token included, anywhere,
	// plain http too: a 3xx is a failed send.
	guarded.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	var tr *http.Transport
	switch t := guarded.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return nil, fmt.Errorf("webpush: HTTPClient.Transport is a %T; it must be an *http.Transport so connections can be checked", t)
	}
	// A proxy would make the connected address the proxy's, not the
	// push service's.
	tr.Proxy = nil
	inner := tr.DialContext
	if inner == nil {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: p.control}
		inner = d.DialContext
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := inner(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := p.checkConn(c); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	tr.DialTLSContext = nil
	guarded.Transport = tr
	return &guarded, nil
}
