package webpush_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/pushtest"
	"github.com/natter-chat/natter/pushnotify/webpush"
)

// noDNS is a resolver that never leaves the machine: /etc/hosts answers
// (localhost), anything else fails.
var noDNS = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no DNS in this test")
}}

func TestPublicAddr(t *testing.T) {
	for s, want := range map[string]bool{
		"8.8.8.8": true, "142.250.74.106": true, "2a00:1450:4001:82b::200a": true,
		"127.0.0.1": false, "127.8.9.1": false, "::1": false, "0.0.0.0": false, "::": false,
		"10.0.0.1": false, "172.16.5.4": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "fd00:ec2::254": false, "fc00::1": false,
		"100.64.0.1": false, "100.127.255.254": false, "224.0.0.1": false, "ff02::1": false,
		"255.255.255.255": false, "192.0.2.1": false, "198.18.0.1": false,
		"::ffff:127.0.0.1": false, "::ffff:169.254.169.254": false, "::ffff:10.0.0.1": false,
		"64:ff9b::a9fe:a9fe": false, "2002:7f00:1::": false, "2001:db8::1": false,
		"::ffff:8.8.8.8": true,
	} {
		if got := webpush.PublicAddr(netip.MustParseAddr(s)); got != want {
			t.Errorf("PublicAddr(%s) = %v, want %v", s, got, want)
		}
	}
}

func TestEndpointPolicyCheck(t *testing.T) {
	def := webpush.EndpointPolicy{Resolver: noDNS}
	anyHost := webpush.EndpointPolicy{AllowHosts: []string{webpush.AnyPublicHost}, Resolver: noDNS}
	tests := []struct {
		name     string
		policy   webpush.EndpointPolicy
		endpoint string
		wantWhy  string // "" means allowed
	}{
		{"loopback literal", anyHost, "https://127.0.0.1:8443/x", "127.0.0.1 is not a public address"},
		{"private literal", anyHost, "https://10.0.0.1/x", "10.0.0.1 is not a public address"},
		{"metadata literal", anyHost, "https://169.254.169.254/latest/meta-data/", "169.254.169.254 is not a public address"},
		{"IPv6 loopback", anyHost, "https://[::1]:443/x", "::1 is not a public address"},
		{"IPv4-mapped loopback", anyHost, "https://[::ffff:127.0.0.1]/x", "is not a public address"},
		{"unique local", anyHost, "https://[fd12:3456::1]/x", "is not a public address"},
		{"CGNAT", anyHost, "https://100.64.0.1/x", "is not a public address"},
		{"name resolving to loopback", anyHost, "https://localhost/x", "resolves to"},
		{"name that does not resolve", anyHost, "https://push.natter.invalid/x", "does not resolve"},
		{"public literal with any host", anyHost, "https://8.8.8.8/x", ""},
		{"http", anyHost, "http://8.8.8.8/x", "not an https URL"},
		{"user info", anyHost, "https://a:b@8.8.8.8/x", "user info"},
		{"not on the default list", def, "https://push.attacker.example/x", "not a known push service"},
		{"public literal not on the default list", def, "https://8.8.8.8/x", "not a known push service"},
		{"suffix trick", def, "https://fcm.googleapis.com.attacker.example/x", "not a known push service"},
		{"wildcard is not the bare domain", def, "https://notify.windows.com/x", "not a known push service"},
		{"listed name resolving to loopback", webpush.EndpointPolicy{AllowHosts: []string{"localhost"}, Resolver: noDNS}, "https://localhost:9/x", "resolves to"},
		{"allowed private for tests", webpush.EndpointPolicy{AllowHosts: []string{"127.0.0.1"}, AllowPrivate: true}, "https://127.0.0.1:8443/x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(t.Context(), tt.endpoint)
			if tt.wantWhy == "" {
				if err != nil {
					t.Fatalf("Check(%s) = %v, want allowed", tt.endpoint, err)
				}
				return
			}
			if !errors.Is(err, webpush.ErrEndpointRefused) || !strings.Contains(err.Error(), tt.wantWhy) {
				t.Fatalf("Check(%s) = %v, want ErrEndpointRefused saying %q", tt.endpoint, err, tt.wantWhy)
			}
		})
	}
}

// sender returns a Web Push client with policy over client.
func sender(t *testing.T, svc *pushtest.WebPush, policy webpush.EndpointPolicy, client *http.Client) *webpush.Client {
	t.Helper()
	priv, _, err := webpush.GenerateVAPIDKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := webpush.New(webpush.Config{PrivateKey: priv, Subject: "mailto:ops@natter.example", HTTPClient: client, Endpoints: policy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// onHost returns the subscription sub with its endpoint moved to host.
func onHost(t *testing.T, sub, host string) string {
	t.Helper()
	s, err := webpush.ParseSubscription(sub)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(s.Endpoint)
	return strings.Replace(sub, u.Host, host, 1)
}

// An allow-listed name that DNS points at loopback when the sender
// connects (DNS rebinding after registration) is refused at dial time,
// before a byte is sent.
func TestSendRefusesNonPublicAtDial(t *testing.T) {
	t.Cleanup(natstest.CheckGoroutines(t))
	svc := pushtest.NewWebPush(t, time.Now)
	sub := svc.Subscribe()
	svcAddr := strings.TrimPrefix(svc.URL(), "https://")

	t.Run("custom dial", func(t *testing.T) {
		// The test's "DNS": push.example.com (on the fake's certificate) is
		// the fake, on 127.0.0.1.
		var dials atomic.Int32
		tr := svc.Client().Transport.(*http.Transport).Clone()
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			if addr != "push.example.com:443" {
				return nil, errors.New("unexpected dial to " + addr)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, svcAddr)
		}
		c := sender(t, svc, webpush.EndpointPolicy{AllowHosts: []string{"push.example.com"}}, &http.Client{Transport: tr})
		n := &pushnotify.Notification{Platform: pushnotify.PlatformWebPush, Token: onHost(t, sub, "push.example.com"), Title: "t", Body: "b"}
		err := c.Send(t.Context(), n)
		if !errors.Is(err, webpush.ErrEndpointRefused) {
			t.Fatalf("Send = %v, want ErrEndpointRefused", err)
		}
		var re *pushnotify.RetryError
		if errors.As(err, &re) {
			t.Errorf("a refused endpoint is retryable: %v", err)
		}
		if dials.Load() == 0 {
			t.Fatal("the test's dialer was never called: the refusal came from elsewhere")
		}
	})
	t.Run("default dialer", func(t *testing.T) {
		// localhost is on the list, but it is loopback: the dialer's
		// control refuses before connecting.
		port := svcAddr[strings.LastIndex(svcAddr, ":")+1:]
		c := sender(t, svc, webpush.EndpointPolicy{AllowHosts: []string{"localhost"}}, nil)
		n := &pushnotify.Notification{Platform: pushnotify.PlatformWebPush, Token: onHost(t, sub, "localhost:"+port), Title: "t", Body: "b"}
		if err := c.Send(t.Context(), n); !errors.Is(err, webpush.ErrEndpointRefused) {
			t.Fatalf("Send = %v, want ErrEndpointRefused", err)
		}
	})
	t.Run("not on the list", func(t *testing.T) {
		c := sender(t, svc, webpush.EndpointPolicy{}, svc.Client())
		n := &pushnotify.Notification{Platform: pushnotify.PlatformWebPush, Token: sub, Title: "t", Body: "b"}
		if err := c.Send(t.Context(), n); !errors.Is(err, webpush.ErrEndpointRefused) {
			t.Fatalf("Send = %v, want ErrEndpointRefused", err)
		}
	})
	if got := len(svc.Received()); got != 0 {
		t.Fatalf("the push service got %d requests, want 0", got)
	}
}

// A redirect from the push service is not followed: the send fails,
// permanently, and the redirect's target sees nothing.
func TestSendDoesNotFollowRedirects(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(target.Close)
	for _, status := range []int{301, 302, 307, 308} {
		s := newSetup(t)
		s.service.Script(pushtest.Reply{Status: status, Header: map[string]string{"Location": target.URL + "/internal"}})
		err := s.client.Send(t.Context(), s.note())
		var se *pushnotify.StatusError
		if !errors.As(err, &se) || se.Status != status {
			t.Fatalf("%d: Send = %v, want a StatusError %d", status, err, status)
		}
		var re *pushnotify.RetryError
		if errors.As(err, &re) || errors.Is(err, pushnotify.ErrInvalidToken) {
			t.Errorf("%d: Send = %v, want a permanent failure", status, err)
		}
		if got := len(s.service.Received()); got != 1 {
			t.Errorf("%d: the push service got %d requests, want 1", status, got)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the redirect target got %d requests", hits.Load())
	}
}

func TestNewRefusesUncheckableTransport(t *testing.T) {
	priv, _, _ := webpush.GenerateVAPIDKey()
	rt := roundTripper(func(*http.Request) (*http.Response, error) { return nil, errors.New("unused") })
	if _, err := webpush.New(webpush.Config{PrivateKey: priv, Subject: "mailto:a@b.example", HTTPClient: &http.Client{Transport: rt}}); err == nil {
		t.Fatal("New accepted a transport whose connections it cannot check")
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzParseSubscription feeds the subscription parser and the endpoint
// policy arbitrary input: neither may panic, and what they accept keeps
// their promises.
func FuzzParseSubscription(f *testing.F) {
	const keys = `"keys":{"p256dh":"BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4","auth":"BTBZMqHH6r4Tts7J_aSIgg"}`
	for _, e := range []string{
		"https://fcm.googleapis.com/fcm/send/abc", "https://127.0.0.1:8443/x", "https://[::ffff:7f00:1]/x",
		"https://169.254.169.254/", "https://wns2-par02p.notify.windows.com/w/?token=x", "http://x", "https://a@b/",
		"https://web.push.apple.com/QGx", "https://fcm.googleapis.com./x", "https://[fe80::1%25eth0]/",
	} {
		f.Add(`{"endpoint":"` + e + `",` + keys + `}`)
	}
	f.Add("nope")
	policies := []webpush.EndpointPolicy{
		{Resolver: noDNS},
		{AllowHosts: []string{webpush.AnyPublicHost}, Resolver: noDNS},
	}
	f.Fuzz(func(t *testing.T, token string) {
		sub, err := webpush.ParseSubscription(token)
		if err != nil {
			return
		}
		u, err := url.Parse(sub.Endpoint)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			t.Fatalf("ParseSubscription accepted endpoint %q", sub.Endpoint)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		for i, p := range policies {
			if err := p.Check(ctx, sub.Endpoint); err != nil {
				if !errors.Is(err, webpush.ErrEndpointRefused) {
					t.Fatalf("Check(%q) = %v, not ErrEndpointRefused", sub.Endpoint, err)
				}
				continue
			}
			host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
			if a, err := netip.ParseAddr(host); err == nil && !webpush.PublicAddr(a) {
				t.Fatalf("policy %d allowed non-public %q", i, sub.Endpoint)
			}
			if i == 0 && !defaultListed(host) {
				t.Fatalf("default policy allowed %q", sub.Endpoint)
			}
		}
	})
}

func defaultListed(host string) bool {
	for _, h := range webpush.DefaultAllowHosts {
		if h == host || strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:]) {
			return true
		}
	}
	return false
}
