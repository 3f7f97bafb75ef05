// Package fcm sends notifications through Firebase Cloud Messaging's HTTP
// v1 API, authorized by an OAuth2 access token obtained for a service
// account with the JWT-bearer grant (golang.org/x/oauth2/google).
//
// Access tokens are fetched with the caller's context and cached until
// they are about to expire; a 401 drops the cached token and the send is
// tried once more with a new one.
package fcm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/jwt"

	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/internal/wire"
)

// Endpoint is FCM's production endpoint.
const Endpoint = "https://fcm.googleapis.com"

// Scope is the OAuth2 scope FCM sends need.
const Scope = "https://www.googleapis.com/auth/firebase.messaging"

const provider = "fcm"

// maxBody bounds the notification body; a message may be 4 KiB.
const maxBody = 1024

// Config configures a Client.
type Config struct {
	// Credentials is the service account's JSON key file. Required.
	Credentials []byte
	// ProjectID defaults to the key file's project_id.
	ProjectID string
	// Endpoint defaults to Endpoint.
	Endpoint string
	// TokenURL replaces the key file's token_uri (tests).
	TokenURL string
	// HTTPClient is used for the token and the sends; the default has a
	// 30 s timeout.
	HTTPClient *http.Client
	// Now defaults to time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Client sends notifications to FCM. It is safe for concurrent use.
type Client struct {
	cfg     Config
	jwt     *jwt.Config
	sendURL string
	http    *http.Client
	log     *slog.Logger

	mu    sync.Mutex // held while a token is fetched, so one fetch at a time
	token *oauth2.Token
}

var _ pushnotify.Sender = (*Client)(nil)

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	jc, err := google.JWTConfigFromJSON(cfg.Credentials, Scope)
	if err != nil {
		return nil, fmt.Errorf("fcm: service account credentials: %w", err)
	}
	if cfg.TokenURL != "" {
		jc.TokenURL = cfg.TokenURL
	}
	if cfg.ProjectID == "" {
		var f struct {
			ProjectID string `json:"project_id"`
		}
		_ = json.Unmarshal(cfg.Credentials, &f) // parsed above already
		cfg.ProjectID = f.ProjectID
	}
	if cfg.ProjectID == "" {
		return nil, errors.New("fcm: no ProjectID and none in the credentials")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = Endpoint
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Client{
		cfg:     cfg,
		jwt:     jc,
		sendURL: strings.TrimSuffix(cfg.Endpoint, "/") + "/v1/projects/" + url.PathEscape(cfg.ProjectID) + "/messages:send",
		http:    cfg.HTTPClient,
		log:     cfg.Logger,
	}, nil
}

// Close closes idle connections.
func (c *Client) Close() {
	c.http.CloseIdleConnections()
}

// Send implements pushnotify.Sender.
func (c *Client) Send(ctx context.Context, n *pushnotify.Notification) error {
	if n.Token == "" {
		return wire.InvalidToken(provider, 0, "empty registration token")
	}
	body, err := json.Marshal(request{Message: message(n)})
	if err != nil {
		return fmt.Errorf("fcm: encode message: %w", err)
	}
	for attempt := 1; ; attempt++ {
		tok, err := c.accessToken(ctx)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.sendURL, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("fcm: %w", err)
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		tok.SetAuthHeader(req)
		resp, err := c.http.Do(req)
		if err != nil {
			return wire.TransportError(ctx, provider, err)
		}
		raw := wire.ReadBody(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 1 {
			c.log.Info("FCM refused the access token, fetching a new one.")
			c.dropToken(tok)
			continue
		}
		return c.classify(resp, raw)
	}
}

// accessToken returns a cached access token or fetches one with ctx.
func (c *Client) accessToken(ctx context.Context) (*oauth2.Token, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token.Valid() {
		return c.token, nil
	}
	tok, err := c.jwt.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, c.http)).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && !pushnotify.RetryableStatus(re.Response.StatusCode) {
			return nil, fmt.Errorf("fcm: access token: %w", err) // bad credentials: permanent
		}
		return nil, wire.TransportError(ctx, provider, fmt.Errorf("access token: %w", err))
	}
	c.token = tok
	return tok, nil
}

func (c *Client) dropToken(tok *oauth2.Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = nil
	}
}

// errorBody is Google's error envelope (google.rpc.Status).
type errorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type            string `json:"@type"`
			ErrorCode       string `json:"errorCode"`
			FieldViolations []struct {
				Field       string `json:"field"`
				Description string `json:"description"`
			} `json:"fieldViolations"`
		} `json:"details"`
	} `json:"error"`
}

// classify maps FCM's answer: UNREGISTERED (404) and INVALID_ARGUMENT about
// message.token are ErrInvalidToken; 429, 500 and 503 are retryable.
func (c *Client) classify(resp *http.Response, raw []byte) error {
	var e errorBody
	_ = json.Unmarshal(raw, &e)
	code, badToken := e.Error.Status, false
	for _, d := range e.Error.Details {
		if d.ErrorCode != "" {
			code = d.ErrorCode
		}
		for _, v := range d.FieldViolations {
			if v.Field == "message.token" {
				badToken = true
			}
		}
	}
	if code == "" {
		code = wire.Snippet(raw)
	}
	switch {
	case code == "UNREGISTERED" || resp.StatusCode == http.StatusNotFound:
		return wire.InvalidToken(provider, resp.StatusCode, code)
	case code == "INVALID_ARGUMENT" && badToken:
		return wire.InvalidToken(provider, resp.StatusCode, code)
	}
	return wire.StatusError(provider, resp, code, c.cfg.Now())
}

type request struct {
	Message *fcmMessage `json:"message"`
}

type fcmMessage struct {
	Token        string            `json:"token"`
	Notification *notification     `json:"notification,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
	Android      *android          `json:"android,omitempty"`
	APNS         *apnsConfig       `json:"apns,omitempty"`
}

type notification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

type android struct {
	CollapseKey  string               `json:"collapse_key,omitempty"`
	Priority     string               `json:"priority,omitempty"`
	TTL          string               `json:"ttl,omitempty"`
	Notification *androidNotification `json:"notification,omitempty"`
}

type androidNotification struct {
	Tag string `json:"tag,omitempty"`
}

type apnsConfig struct {
	Headers map[string]string `json:"headers,omitempty"`
	Payload map[string]any    `json:"payload,omitempty"`
}

// reservedData are data keys FCM refuses.
func reservedData(k string) bool {
	return k == "from" || k == "message_type" || k == "collapse_key" ||
		strings.HasPrefix(k, "google") || strings.HasPrefix(k, "gcm")
}

// message builds the v1 message. The apns block matters for iOS devices
// registered through FCM: thread-id groups by conversation.
func message(n *pushnotify.Notification) *fcmMessage {
	m := &fcmMessage{
		Token:        n.Token,
		Notification: &notification{Title: n.Title, Body: wire.Truncate(n.Body, maxBody)},
		Android:      &android{Priority: "HIGH"},
	}
	for k, v := range n.Data {
		if !reservedData(k) {
			if m.Data == nil {
				m.Data = make(map[string]string, len(n.Data))
			}
			m.Data[k] = v
		}
	}
	aps := map[string]any{"thread-id": n.Conv}
	if n.Badge != nil {
		aps["badge"] = *n.Badge
	}
	if n.Private {
		aps["mutable-content"] = 1
	}
	m.APNS = &apnsConfig{Headers: map[string]string{"apns-priority": "10"}, Payload: map[string]any{"aps": aps}}
	if n.Urgency == pushnotify.UrgencyNormal {
		m.Android.Priority = "NORMAL"
		m.APNS.Headers["apns-priority"] = "5"
	}
	if n.TTL > 0 {
		m.Android.TTL = strconv.FormatInt(int64(n.TTL/time.Second), 10) + "s"
	}
	if n.CollapseID != "" {
		m.Android.CollapseKey = n.CollapseID
		m.Android.Notification = &androidNotification{Tag: n.CollapseID}
		if len(n.CollapseID) <= 64 {
			m.APNS.Headers["apns-collapse-id"] = n.CollapseID
		}
	}
	return m
}
