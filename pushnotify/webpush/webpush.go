// Package webpush sends Web Push notifications (RFC 8030) to browser
// subscriptions, identified with VAPID (RFC 8292) and encrypted with
// aes128gcm (RFC 8291, RFC 8188).
//
// It is written on the standard library (crypto/ecdh, crypto/hkdf,
// crypto/aes) and golang-jwt/jwt/v5 rather than
// github.com/SherClockHolmes/webpush-go: since Go 1.24 every primitive is
// in the standard library, the encryption is some 60 lines checked
// byte for byte against the RFC 8291 example, and owning it lets us keep
// one record without fixed-size padding, take a context and an injected
// clock, and map answers to pushnotify's errors, Retry-After included.
package webpush

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/internal/wire"
)

const provider = "webpush"

// maxBody bounds the notification body inside the encrypted payload.
const maxBody = 1024

// Config configures a Client.
type Config struct {
	// PrivateKey is the VAPID private key: base64url of the raw 32-byte
	// P-256 scalar, as GenerateVAPIDKey and the usual web-push tools print
	// it. Required.
	PrivateKey string
	// Subject is the contact in the VAPID token: "mailto:ops@example.com"
	// or an https: URL. Required.
	Subject string
	// TokenLifetime is the VAPID token's exp from now: at most 24 hours
	// (RFC 8292), 12 hours by default.
	TokenLifetime time.Duration
	// DefaultTTL is the TTL header when the notification has none
	// (default 24 hours). 0 would mean "deliver now or never".
	DefaultTTL time.Duration
	// HTTPClient defaults to a client with a 30 s timeout. New uses a copy
	// that follows no redirects and checks every connection against
	// Endpoints; its Transport, if set, must be an *http.Transport.
	HTTPClient *http.Client
	// Endpoints says which endpoints may be sent to; the zero value
	// allows only the big browsers' push services on public addresses.
	Endpoints EndpointPolicy
	// Now defaults to time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Client sends Web Push messages. It is safe for concurrent use.
type Client struct {
	cfg       Config
	key       *ecdsa.PrivateKey
	publicKey string
	http      *http.Client
	log       *slog.Logger
}

var _ pushnotify.Sender = (*Client)(nil)

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	key, err := parseVAPIDKey(cfg.PrivateKey)
	if err != nil {
		return nil, err
	}
	if !validSubject(cfg.Subject) {
		return nil, fmt.Errorf("webpush: Subject %q is not a mailto: or https: URI", cfg.Subject)
	}
	if cfg.TokenLifetime <= 0 || cfg.TokenLifetime > maxTokenLifetime {
		cfg.TokenLifetime = 12 * time.Hour
	}
	if cfg.DefaultTTL <= 0 {
		cfg.DefaultTTL = 24 * time.Hour
	}
	guarded, err := cfg.Endpoints.guardClient(cfg.HTTPClient)
	if err != nil {
		return nil, err
	}
	cfg.HTTPClient = guarded
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("webpush: VAPID public key: %w", err)
	}
	return &Client{cfg: cfg, key: key, publicKey: b64(pub), http: cfg.HTTPClient, log: cfg.Logger}, nil
}

// PublicKey returns the VAPID public key, base64url: the web app's
// applicationServerKey.
func (c *Client) PublicKey() string { return c.publicKey }

// Close closes idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Subscription is a browser's PushSubscription as JSON
// (PushSubscription.toJSON()).
type Subscription struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// ParseSubscription parses and checks a subscription: an https endpoint, a
// P-256 public key and a 16-byte auth secret. The gateway can call it in
// register_device to refuse garbage early.
func ParseSubscription(s string) (*Subscription, error) {
	var sub Subscription
	if err := json.Unmarshal([]byte(s), &sub); err != nil {
		return nil, fmt.Errorf("webpush: subscription: %w", err)
	}
	if _, err := sub.parts(); err != nil {
		return nil, err
	}
	return &sub, nil
}

type subParts struct {
	endpoint *url.URL
	p256dh   []byte
	auth     []byte
}

func (s *Subscription) parts() (subParts, error) {
	u, err := url.Parse(s.Endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return subParts{}, fmt.Errorf("webpush: endpoint %q is not an https URL", s.Endpoint)
	}
	p256dh, err := decodeB64(s.Keys.P256dh)
	if err != nil || len(p256dh) != 65 || p256dh[0] != 4 {
		return subParts{}, errors.New("webpush: keys.p256dh is not an uncompressed P-256 point")
	}
	auth, err := decodeB64(s.Keys.Auth)
	if err != nil || len(auth) != 16 {
		return subParts{}, errors.New("webpush: keys.auth is not 16 bytes")
	}
	return subParts{endpoint: u, p256dh: p256dh, auth: auth}, nil
}

// Payload is the JSON the service worker's push event receives
// (event.data.json()).
type Payload struct {
	Title string            `json:"title"`
	Body  string            `json:"body"`
	Conv  string            `json:"conv,omitempty"`
	Seq   uint64            `json:"seq,omitempty"`
	Count int               `json:"count,omitempty"`
	Tag   string            `json:"tag,omitempty"` // for showNotification's tag
	Data  map[string]string `json:"data,omitempty"`
}

// Send implements pushnotify.Sender; n.Token is the subscription JSON.
func (c *Client) Send(ctx context.Context, n *pushnotify.Notification) error {
	var sub Subscription
	if err := json.Unmarshal([]byte(n.Token), &sub); err != nil {
		return wire.InvalidToken(provider, 0, "subscription is not JSON")
	}
	parts, err := sub.parts()
	if err != nil {
		return wire.InvalidToken(provider, 0, err.Error())
	}
	plaintext, err := json.Marshal(Payload{
		Title: n.Title, Body: wire.Truncate(n.Body, maxBody),
		Conv: n.Conv, Seq: n.Seq, Count: n.Count, Tag: n.CollapseID, Data: n.Data,
	})
	if err != nil {
		return fmt.Errorf("webpush: encode payload: %w", err)
	}
	body, err := encrypt(plaintext, parts.p256dh, parts.auth)
	if err != nil {
		return fmt.Errorf("webpush: encrypt: %w", err)
	}
	if _, err := c.cfg.Endpoints.checkURL(parts.endpoint); err != nil {
		return err
	}
	auth, err := c.authorization(parts.endpoint)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webpush: %w", err)
	}
	h := req.Header
	h.Set("Authorization", auth)
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Encoding", "aes128gcm")
	ttl := n.TTL
	if ttl <= 0 {
		ttl = c.cfg.DefaultTTL
	}
	h.Set("TTL", strconv.FormatInt(int64(ttl/time.Second), 10))
	if n.Urgency == pushnotify.UrgencyNormal {
		h.Set("Urgency", "normal")
	} else {
		h.Set("Urgency", "high")
	}
	if t := topic(n.CollapseID); t != "" {
		h.Set("Topic", t)
	}
	resp, err := c.http.Do(req)
	if errors.Is(err, ErrEndpointRefused) {
		return err // refused at dial: retrying would not change the address
	}
	if err != nil {
		return wire.TransportError(ctx, provider, err)
	}
	raw := wire.ReadBody(resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		// Redirects are not followed: the endpoint is the push service's
		// own URL, and a redirect could point anywhere.
		return &pushnotify.StatusError{Provider: provider, Status: resp.StatusCode, Reason: "redirect not followed"}
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return wire.InvalidToken(provider, resp.StatusCode, wire.Snippet(raw))
	}
	return wire.StatusError(provider, resp, wire.Snippet(raw), c.cfg.Now())
}

var topicRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// topic fits a collapse id into the Topic header: at most 32 characters of
// the URL-safe base64 alphabet (RFC 8030 5.4); others are hashed.
func topic(id string) string {
	if id == "" || topicRE.MatchString(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return b64(sum[:])[:32]
}
