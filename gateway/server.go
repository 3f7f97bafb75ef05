// Package gateway is Natter's WebSocket server. Each gateway holds its
// users' connections, subscribes once per connected user to that user's
// NATS subject, and turns client requests into JetStream publishes, KV
// changes and reads. Any number of gateways can serve the same NATS.
package gateway

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// readBufferSize is each connection's gws read buffer, held for life.
const readBufferSize = 512

// Config tunes a gateway. The zero value is filled with the defaults.
type Config struct {
	// Heartbeat is the heartbeat_s announced in welcome; a connection silent
	// for twice as long is closed.
	Heartbeat time.Duration
	// HelloTimeout bounds the wait for hello when the upgrade had no token.
	HelloTimeout time.Duration
	// MaxFrameBytes is the largest frame read; larger ones close with 1009.
	MaxFrameBytes int
	// MaxPendingBytes bounds what may wait to be written to one connection;
	// past it the connection is closed with 4008.
	MaxPendingBytes int64
	// WriteTimeout bounds one write to a socket.
	WriteTimeout time.Duration
	// RateBurst and RateSustained are the per-connection token bucket.
	RateBurst     int
	RateSustained float64
	// AbuseLimit is how many requests in a row may be refused for rate
	// before the connection is closed with 4008.
	AbuseLimit int
	// RequestTimeout bounds the NATS work of one request.
	RequestTimeout time.Duration
	// PublishRetry bounds how long a send retries its JetStream publish
	// (with the same Nats-Msg-Id) while the CHAT stream has no leader;
	// then it answers unavailable. Default 10 s, which covers a leader
	// election.
	PublishRetry time.Duration
	// DispatchBacklog is how many pushes may wait for each of the hub's
	// dispatchers; past it NATS drops them and the users affected get a
	// resync. Default 65,536.
	DispatchBacklog int
	// NoticeBacklog is how many typing and read notices may wait for their
	// membership check; past it they are dropped. Default 4,096.
	NoticeBacklog int
	// MembersInline is how many members a conversation lists inline.
	MembersInline int
	// MaxAddedPerHour bounds how many times others may add one user to
	// groups within an hour; past it create and add_member answer
	// rate_limited. Default 100.
	MaxAddedPerHour int
	// Compression offers permessage-deflate.
	Compression bool
	// OwnMarkerDelay is how long a sender's read marker, moved by a send,
	// may wait to be written (marks.go): sends within it cost one write.
	// Default 5 s.
	OwnMarkerDelay time.Duration
	// DeliveredDelay is how long a delivered marker a client reported may
	// wait to be written and announced (delivered.go): the reports of a
	// user in a conversation within it cost one write and one push.
	// Default 1 s.
	DeliveredDelay time.Duration
	// MaxConnsPerUser bounds one user's open connections (devices, tabs);
	// one more is closed with 1008. Default 32.
	MaxConnsPerUser int
	// MaxConnsPerIP bounds the connections from one remote address; one
	// more gets HTTP 429 before the upgrade. Default 10,000 (users behind
	// one NAT share an address).
	MaxConnsPerIP int
	// TrustedProxies are the reverse proxies whose ClientIPHeader is
	// believed: when the socket's peer is in one of these prefixes, the
	// per-IP limits count the right-most hop of the header that is not a
	// trusted proxy. Otherwise (the default: none) the header is ignored
	// and the peer's address counts, so a client cannot pick its address.
	TrustedProxies []netip.Prefix
	// ClientIPHeader is the header trusted proxies name the client in;
	// DefaultClientIPHeader (X-Forwarded-For) when empty.
	ClientIPHeader string
	// AllowedOrigins lists the browser origins (scheme://host[:port]) that
	// may open a WebSocket, or "*" for any. Requests without an Origin
	// header (not browsers) and same-origin requests are always allowed,
	// so the bundled web app works without configuration.
	AllowedOrigins []string
	// MemberViews is how many (conversation, user) membership views the
	// gateway keeps so that a send reads nothing (memberview.go), when
	// Deps.MemberViews is set: an LRU of about 150 bytes an entry.
	// Default 100,000; negative keeps none (every send reads).
	MemberViews int
	// Logger; slog.Default by default.
	Logger *slog.Logger
	// Now is the clock.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Heartbeat, protocol.DefaultHeartbeatSecs*time.Second)
	// welcome announces whole seconds and clients pace their pings by
	// them: a heartbeat of 500 ms would say heartbeat_s 0. So the
	// heartbeat is the whole seconds announced, rounded up.
	if r := c.Heartbeat % time.Second; r != 0 {
		c.Heartbeat += time.Second - r
	}
	def(&c.HelloTimeout, 10*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.RequestTimeout, 10*time.Second)
	def(&c.PublishRetry, 10*time.Second)
	def(&c.OwnMarkerDelay, 5*time.Second)
	def(&c.DeliveredDelay, time.Second)
	if c.DispatchBacklog <= 0 {
		c.DispatchBacklog = 1 << 16
	}
	if c.NoticeBacklog <= 0 {
		c.NoticeBacklog = 4096
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 1 << 20
	}
	if c.MaxPendingBytes <= 0 {
		c.MaxPendingBytes = 4 << 20
	}
	if c.RateBurst <= 0 {
		c.RateBurst = 200
	}
	if c.RateSustained <= 0 {
		c.RateSustained = 100
	}
	if c.AbuseLimit <= 0 {
		c.AbuseLimit = 1000
	}
	if c.MembersInline <= 0 {
		c.MembersInline = 100
	}
	if c.MaxAddedPerHour <= 0 {
		c.MaxAddedPerHour = 100
	}
	if c.MemberViews == 0 {
		c.MemberViews = 100_000
	}
	if c.MaxConnsPerUser <= 0 {
		c.MaxConnsPerUser = 32
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = 10_000
	}
	if c.ClientIPHeader == "" {
		c.ClientIPHeader = DefaultClientIPHeader
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Deps are the parts a gateway works with, each given once: the gateway
// neither opens nor closes them.
type Deps struct {
	Verifier *auth.Verifier
	// NC carries the users' subjects and the typing and read notices.
	// The gateway chains its own reconnect and error handlers in front of
	// the connection's (restored by Shutdown): it tells clients to re-sync
	// when pushes were lost.
	NC *nats.Conn
	// JS stores sent messages in the CHAT stream.
	JS            jetstream.JetStream
	Conversations Conversations
	ReadMarkers   ReadMarkers
	// Messages answers sync, history and last seqs: the history Reader
	// in one process, or the history API's client.
	Messages Messages
	// Presence records this gateway's connections and answers queries.
	Presence Presence
	// Devices keeps push notification devices and mutes.
	Devices Devices
	// Consent keeps message requests, invitations, hidden conversations
	// and add policies.
	Consent Consent
	// Blocks keeps block lists and the add limit's counts.
	Blocks Blocks
	// Groups changes group settings and roles (group.go).
	Groups Groups
	// Metrics are optional hooks for counters and latencies.
	Metrics Metrics
	// MemberViews, optional, reads membership views that sends keep
	// (memberview.go); without it every send reads Consent.Membership.
	// Its reads must be sound (conversation.Store.MemberView) and every
	// change of membership must store its event before it is answered.
	MemberViews MemberViews
	// Tracer, optional, records sends and pushes (tracing.go); nil, the
	// default, records nothing and stores no trace header.
	Tracer trace.Tracer
	// Inbox, optional, reads the conversation list's summaries
	// (inbox.go); without it conversations are listed by id and read
	// from history one by one.
	Inbox Inbox
	// Attachments, optional, keeps the files messages reference
	// (attach.go); without it upload is refused.
	Attachments Attachments
	// Searcher, optional, answers search (search.go); without it search
	// is answered unavailable.
	Searcher Searcher
	// Accounts, optional, refuses erased users and answers delete_account
	// (account.go); without it delete_account is unavailable.
	Accounts Accounts
}

// Server is one gateway: an http.Handler for GET /v1/ws.
type Server struct {
	cfg      Config
	verifier *auth.Verifier
	nc       *nats.Conn
	js       jetstream.JetStream
	convs    Conversations
	markers  ReadMarkers
	msgs     Messages
	presence Presence
	devices  Devices
	consent  Consent
	blocks   Blocks
	groups   Groups
	metrics  Metrics
	tracer   trace.Tracer // nil: tracing is off
	attach   Attachments  // nil: no attachments
	searcher Searcher     // nil: search is off
	accounts Accounts     // nil: delete_account is off
	upgrader *gws.Upgrader
	handlers handlerPool // runs the gws callbacks off the read loops (session.go)
	hub      *hub
	own      *markQueue // senders' read markers (marks.go)
	// delivered holds the delivered markers not yet written (delivered.go).
	delivered *markQueue
	// memberViews reads and views keeps the send views; both nil when
	// sends read their membership (memberview.go).
	memberViews MemberViews
	views       *views
	inbox       Inbox // nil: conversations by id

	layout atomic.Pointer[schema.Layout] // the message streams' layout, once read (streams.go)
	chatMu sync.Mutex
	chat   map[string]jetstream.Stream // message streams' handles, once looked up
	// retired are the message streams a re-partition retired, read once
	// (retired.go).
	retired atomic.Pointer[[]schema.Retired]

	// The NATS connection's handlers before New chained its own.
	prevReconnect nats.ConnHandler
	prevError     nats.ErrHandler
	restoreOnce   sync.Once

	mu       sync.Mutex
	sessions map[*session]struct{}
	perIP    map[string]int
	closing  bool
	drained  chan struct{} // closed when closing and no session is left
}

// New returns a gateway; every dependency but Metrics is required.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Verifier == nil || d.NC == nil || d.JS == nil || d.Conversations == nil || d.ReadMarkers == nil ||
		d.Messages == nil || d.Presence == nil || d.Devices == nil || d.Consent == nil || d.Blocks == nil || d.Groups == nil {
		return nil, ErrMissingDep
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg: cfg, verifier: d.Verifier, nc: d.NC, js: d.JS,
		convs: d.Conversations, markers: d.ReadMarkers, msgs: d.Messages,
		presence: d.Presence, devices: d.Devices, consent: d.Consent, blocks: d.Blocks, groups: d.Groups, metrics: d.Metrics,
		tracer: d.Tracer, inbox: d.Inbox, attach: d.Attachments, searcher: d.Searcher, accounts: d.Accounts,
		sessions: make(map[*session]struct{}),
		perIP:    make(map[string]int),
		drained:  make(chan struct{}),
	}
	if d.MemberViews != nil && cfg.MemberViews > 0 {
		s.memberViews, s.views = d.MemberViews, newViews(cfg.MemberViews)
	}
	s.hub = newHub(s)
	if err := s.hub.watchBlocks(s.hub.life); err != nil {
		s.hub.close()
		return nil, err
	}
	s.own = newOwnMarks(s)
	s.delivered = newDeliveredMarks(s)
	s.prevReconnect, s.prevError = d.NC.ReconnectHandler(), d.NC.ErrorHandler()
	d.NC.SetReconnectHandler(func(nc *nats.Conn) {
		s.hub.reconnected()
		if s.prevReconnect != nil {
			s.prevReconnect(nc)
		}
	})
	d.NC.SetErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
		s.hub.asyncError(sub, err)
		if s.prevError != nil {
			s.prevError(nc, sub, err)
		}
	})
	s.upgrader = gws.NewUpgrader(s, &gws.ServerOption{
		ReadMaxPayloadSize: cfg.MaxFrameBytes,
		// Each connection holds its read buffer for life: 512 bytes instead
		// of gws's 4 KiB is 3.5 KiB less per idle connection (issue 19).
		// Requests are a few hundred bytes; a larger frame, up to
		// MaxFrameBytes, just takes more reads (bufio reads a payload larger
		// than the buffer straight into the message).
		ReadBufferSize: readBufferSize,
		// Text frames are checked for UTF-8 by the request decoder, which
		// answers bad_request and keeps the connection.
		CheckUtf8Enabled: false,
		PermessageDeflate: gws.PermessageDeflate{
			Enabled:               cfg.Compression,
			Threshold:             deflateThreshold,
			ServerContextTakeover: false,
			ClientContextTakeover: false,
		},
		NewSession: func() gws.SessionStorage { return &slot{} },
		Logger:     gwsLogger{cfg.Logger},
		Recovery:   gws.Recovery,
	})
	return s, nil
}

// ServeHTTP upgrades GET /v1/ws. A token in the Authorization header is
// checked before the upgrade: a bad one gets 401 and no WebSocket.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.originAllowed(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	sess := &session{srv: s, id: newSessionID(), limiter: newBucket(s.cfg.RateBurst, s.cfg.RateSustained, s.cfg.Now())}
	sess.ip = s.clientIP(r)
	if h := r.Header.Get("Authorization"); h != "" {
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			http.Error(w, "Authorization must be Bearer <JWT>", http.StatusUnauthorized)
			return
		}
		uid, until, err := s.verify(strings.TrimSpace(token))
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		sess.user = uid
		sess.expiry.until = until
		sess.headerAuth = true
	}
	switch s.track(sess) {
	case trackClosing:
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	case trackTooMany:
		refused(s.metrics.Refused, RefusedConnsPerIP)
		http.Error(w, "too many connections from this address", http.StatusTooManyRequests)
		return
	}
	// Hijacked here rather than by gws, so the socket under the WebSocket
	// is a freshConn (conn.go).
	raw, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.untrack(sess)
		return
	}
	netConn := &freshConn{Conn: raw, timeout: s.cfg.WriteTimeout}
	// Reads go to the socket itself, not through freshConn: one more
	// frame under the read loop's parked Read kept its stack from
	// shrinking back to 2 KiB (4 KiB per idle connection instead,
	// TestIdleConnectionReadLoopKeepsSmallStack).
	conn, err := s.upgrader.UpgradeFromConn(netConn, bufio.NewReaderSize(raw, readBufferSize), r)
	if err != nil {
		s.untrack(sess)
		return
	}
	sess.conn = conn
	// As gws decides it (Upgrader.getPermessageDeflate).
	sess.deflate = s.cfg.Compression && strings.Contains(r.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	conn.Session().(*slot).s = sess
	go conn.ReadLoop()
}

const (
	tracked = iota
	trackClosing
	trackTooMany
)

func (s *Server) track(sess *session) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return trackClosing
	}
	if s.perIP[sess.ip] >= s.cfg.MaxConnsPerIP {
		return trackTooMany
	}
	s.perIP[sess.ip]++
	s.sessions[sess] = struct{}{}
	return tracked
}

func (s *Server) untrack(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess]; !ok {
		return
	}
	delete(s.sessions, sess)
	if s.perIP[sess.ip]--; s.perIP[sess.ip] <= 0 {
		delete(s.perIP, sess.ip)
	}
	if s.closing && len(s.sessions) == 0 {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
}

// Connections returns how many WebSocket connections are open.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Shutdown closes every WebSocket with 1001 (going away) so clients
// reconnect elsewhere, waits until their read loops ended (each closed
// connection is Disconnected from Presence) and drops the gateway's NATS
// subscriptions. The dependencies stay open: their owner closes them. http.Server.Shutdown does not close hijacked
// connections, so this must be called too. It is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		if len(s.sessions) == 0 {
			close(s.drained)
		}
	}
	all := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.closeWith(protocol.CloseShutdown)
	}
	var err error
	select {
	case <-s.drained:
	case <-ctx.Done():
		err = fmt.Errorf("gateway shutdown: %w", ctx.Err())
		for _, sess := range all {
			if sess.conn != nil {
				_ = sess.conn.NetConn().Close()
			}
		}
	}
	// No session is left to send: what senders' markers are owed is
	// written now, on a deadline of its own (ctx may be over).
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RequestTimeout)
	s.own.close(octx)
	s.delivered.close(octx)
	cancel()
	s.restoreOnce.Do(func() {
		s.nc.SetReconnectHandler(s.prevReconnect)
		s.nc.SetErrorHandler(s.prevError)
	})
	s.hub.close()
	s.handlers.close()
	return err
}

// originAllowed applies the Origin allow-list: browsers send Origin, and a
// page on another site must not open a socket with the user's cookies or
// stored token unless the operator allowed that site.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

// slot is a gws session storage holding just our session.
type slot struct{ s *session }

func (*slot) Len() int                     { return 1 }
func (*slot) Load(string) (any, bool)      { return nil, false }
func (*slot) Delete(string)                {}
func (*slot) Store(string, any)            {}
func (*slot) Range(func(string, any) bool) {}

type gwsLogger struct{ l *slog.Logger }

func (g gwsLogger) Error(v ...any) { g.l.Error("websocket library error", "detail", fmt.Sprint(v...)) }
