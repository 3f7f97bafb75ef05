// Package apns sends notifications through the Apple Push Notification
// service: HTTP/2 with token-based authentication (an ES256 JWT signed
// with the team's .p8 key).
//
// It is written on net/http rather than github.com/sideshow/apns2: since Go
// 1.24 the standard Transport speaks HTTP/2 on its own (Transport.Protocols,
// HTTP2Config for connection pings), the JWT is ten lines with
// golang-jwt/jwt/v5, which the module already uses, and the remaining work
// is mapping Apple's answers to pushnotify's error classes, which is ours
// to decide anyway. apns2 adds a second JWT library (v4) and its own
// client and error types for the same few requests.
package apns

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/internal/wire"
)

// Apple's endpoints.
const (
	Production  = "https://api.push.apple.com"
	Development = "https://api.sandbox.push.apple.com"
)

// provider names this package in errors.
const provider = "apns"

// maxBody bounds the alert body; the whole payload may be 4 KiB.
const maxBody = 1024

// Config configures a Client.
type Config struct {
	// Endpoint is Production (the default), Development, or a test server.
	Endpoint string
	// Topic is the app's bundle id (apns-topic). Required.
	Topic string
	// TeamID is the Apple developer team id (the JWT's iss). Required.
	TeamID string
	// KeyID is the id of the signing key (the JWT's kid). Required.
	KeyID string
	// Key is the contents of the AuthKey_<KeyID>.p8 file: a PEM PKCS#8 P-256
	// private key. Required.
	Key []byte
	// TokenLifetime is how long a JWT is reused. Apple rejects tokens older
	// than an hour and refreshes more often than every 20 minutes; the
	// default is 50 minutes.
	TokenLifetime time.Duration
	// TLSConfig is used by the default HTTP/2 client, e.g. to trust a test
	// server's certificate.
	TLSConfig *tls.Config
	// HTTPClient replaces the default client (HTTP/2 only, 30 s timeout);
	// it must speak HTTP/2, which APNs requires.
	HTTPClient *http.Client
	// Now defaults to time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Client sends notifications to APNs. It is safe for concurrent use.
type Client struct {
	cfg  Config
	key  *ecdsa.PrivateKey
	http *http.Client
	log  *slog.Logger

	mu       sync.Mutex
	token    string
	issuedAt time.Time
}

var _ pushnotify.Sender = (*Client)(nil)

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.Topic == "" || cfg.TeamID == "" || cfg.KeyID == "" {
		return nil, errors.New("apns: Topic, TeamID and KeyID are required")
	}
	key, err := ParseKey(cfg.Key)
	if err != nil {
		return nil, err
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = Production
	}
	if cfg.TokenLifetime <= 0 || cfg.TokenLifetime > 55*time.Minute {
		cfg.TokenLifetime = 50 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	hc := cfg.HTTPClient
	if hc == nil {
		var protocols http.Protocols
		protocols.SetHTTP2(true)
		var tlsConfig *tls.Config
		if cfg.TLSConfig != nil {
			tlsConfig = cfg.TLSConfig.Clone()
		}
		hc = &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				Proxy:             http.ProxyFromEnvironment,
				TLSClientConfig:   tlsConfig,
				Protocols:         &protocols,
				ForceAttemptHTTP2: true,
				IdleConnTimeout:   10 * time.Minute,
				// Apple drops idle connections silently: pings find out.
				HTTP2: &http.HTTP2Config{SendPingTimeout: time.Minute, PingTimeout: 15 * time.Second},
			},
		}
	}
	return &Client{cfg: cfg, key: key, http: hc, log: cfg.Logger}, nil
}

// ParseKey parses a .p8 file: a PEM "PRIVATE KEY" holding a PKCS#8 P-256
// key.
func ParseKey(p8 []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(p8)
	if block == nil {
		return nil, errors.New("apns: key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("apns: parse key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("apns: key is %T, want a P-256 ECDSA key", k)
	}
	return ek, nil
}

// Close closes idle connections.
func (c *Client) Close() {
	c.http.CloseIdleConnections()
}

// Send implements pushnotify.Sender. When Apple says the provider token
// expired it signs a new one and tries once more.
func (c *Client) Send(ctx context.Context, n *pushnotify.Notification) error {
	if n.Token == "" || len(n.Token)%2 != 0 {
		return wire.InvalidToken(provider, 0, "malformed device token")
	}
	if _, err := hex.DecodeString(n.Token); err != nil {
		return wire.InvalidToken(provider, 0, "malformed device token")
	}
	body, err := json.Marshal(payload(n))
	if err != nil {
		return fmt.Errorf("apns: encode payload: %w", err)
	}
	for attempt := 1; ; attempt++ {
		token, err := c.providerToken()
		if err != nil {
			return err
		}
		resp, err := c.post(ctx, token, n, body)
		if err != nil {
			return wire.TransportError(ctx, provider, err)
		}
		reason := readReason(resp)
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		if resp.StatusCode == http.StatusForbidden && reason == "ExpiredProviderToken" && attempt == 1 {
			c.log.Info("APNs provider token expired, signing a new one.", "key_id", c.cfg.KeyID)
			c.expire(token)
			continue
		}
		return c.classify(resp, reason)
	}
}

func (c *Client) post(ctx context.Context, token string, n *pushnotify.Notification, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.Endpoint+"/3/device/"+n.Token, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	h := req.Header
	h.Set("authorization", "bearer "+token)
	h.Set("content-type", "application/json")
	h.Set("apns-topic", c.cfg.Topic)
	h.Set("apns-push-type", "alert")
	if n.Urgency == pushnotify.UrgencyNormal {
		h.Set("apns-priority", "5")
	} else {
		h.Set("apns-priority", "10")
	}
	if n.TTL > 0 {
		h.Set("apns-expiration", strconv.FormatInt(c.cfg.Now().Add(n.TTL).Unix(), 10))
	}
	if id := collapseID(n.CollapseID); id != "" {
		h.Set("apns-collapse-id", id)
	}
	return c.http.Do(req)
}

// readReason reads Apple's {"reason": ...} and closes the body.
func readReason(resp *http.Response) string {
	defer resp.Body.Close()
	b := wire.ReadBody(resp.Body)
	var e struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(b, &e) != nil && len(b) > 0 {
		return wire.Snippet(b)
	}
	return e.Reason
}

func (c *Client) classify(resp *http.Response, reason string) error {
	switch {
	case resp.StatusCode == http.StatusGone:
		return wire.InvalidToken(provider, resp.StatusCode, reason)
	case resp.StatusCode == http.StatusBadRequest &&
		(reason == "BadDeviceToken" || reason == "DeviceTokenNotForTopic" || reason == "Unregistered"):
		return wire.InvalidToken(provider, resp.StatusCode, reason)
	}
	return wire.StatusError(provider, resp, reason, c.cfg.Now())
}

// providerToken returns the cached JWT, signing a new one when it is older
// than TokenLifetime.
func (c *Client) providerToken() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	if c.token != "" && now.Sub(c.issuedAt) < c.cfg.TokenLifetime {
		return c.token, nil
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": c.cfg.TeamID,
		"iat": now.Unix(),
	})
	t.Header["kid"] = c.cfg.KeyID
	signed, err := t.SignedString(c.key)
	if err != nil {
		return "", fmt.Errorf("apns: sign provider token: %w", err)
	}
	c.token, c.issuedAt = signed, now
	return signed, nil
}

// expire drops token unless another request already replaced it.
func (c *Client) expire(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token = ""
	}
}

// collapseID fits id into apns-collapse-id's 64 bytes: a longer id is
// replaced by the hex SHA-256 of it, which is exactly 64 bytes.
func collapseID(id string) string {
	if len(id) <= 64 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// payload is the JSON body: "aps" and the custom data at the top level.
func payload(n *pushnotify.Notification) map[string]any {
	aps := map[string]any{
		"alert":     map[string]string{"title": n.Title, "body": wire.Truncate(n.Body, maxBody)},
		"sound":     "default",
		"thread-id": n.Conv,
	}
	if n.Badge != nil {
		aps["badge"] = *n.Badge
	}
	if n.Private {
		// A notification service extension may fetch and show the text.
		aps["mutable-content"] = 1
	}
	p := make(map[string]any, len(n.Data)+1)
	for k, v := range n.Data {
		p[k] = v
	}
	p["aps"] = aps
	return p
}
