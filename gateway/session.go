package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/lxzan/gws"

	"github.com/natter-chat/natter/protocol"
)

// session is one WebSocket connection. Its fields without atomics belong
// to the connection's read loop.
type session struct {
	srv        *Server
	conn       *gws.Conn
	id         string
	user       string
	device     string
	ip         string
	deleting   atomic.Bool
	headerAuth bool
	deflate    bool       // permessage-deflate was negotiated
	entry      *userEntry // set once registered in the hub
	limiter    bucket
	expiry     expiry                     // closes with 4003 when the token expires (reauth.go)
	idle       atomic.Pointer[time.Timer] // closes the connection when silent (checkIdle)
	lastActive atomic.Int64               // cfg.Now() of the last frame received, unix nanoseconds
	busy       atomic.Bool                // a request is being handled: the connection is not idle

	// The send queue (writer.go): nil while idle.
	qmu     sync.Mutex
	queue   *[]queued
	writing bool // a writeLoop runs

	authed  atomic.Bool  // set once registered; read by the hello timer
	pending atomic.Int64 // bytes queued for writing
	closing atomic.Bool
}

func newSessionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func sessionOf(c *gws.Conn) *session { return c.Session().(*slot).s }

// The gws callbacks below run on the connection's read loop goroutine,
// which spends the connection's life parked in conn.Read. Each hands its
// work to s.handlers and waits, so that goroutine keeps the runtime's
// smallest stack (2 KiB): a goroutine's stack only shrinks back while
// under a quarter used, which a parked read never is, so a read loop that
// ran a handler once (authentication, a request, a pong) kept 4 KiB for
// good, half the memory of an idle connection's stack (issue 19).

// maxIdleHandlers bounds the goroutines that wait for the next callback
// with the stack their handlers grew: a fixed cost, not per connection.
const maxIdleHandlers = 128

// handlerPool runs callbacks on goroutines other than the read loops'.
// An idle one is reused, so a handler's stack is not grown from 2 KiB
// again for every frame (about 10 µs of CPU for 8 KiB); nor is anything
// allocated per callback but the callback itself.
type handlerPool struct {
	mu     sync.Mutex
	idle   []*handler
	closed bool // by Shutdown: each goroutine ends after its callback
}

// handler is one goroutine of the pool: it runs each callback sent on
// jobs and answers on done with nil, or with what the callback panicked
// with. Between a callback given and its answer taken it belongs to the
// caller of run, not the pool.
type handler struct {
	jobs chan func()
	done chan any
}

// errHandlerExited stands for a callback that ended its goroutine
// (runtime.Goexit) rather than return or panic.
var errHandlerExited = errors.New("gateway: a callback ended its goroutine")

// run runs f on a handler goroutine and waits for it; a panic in f is
// raised again here, where it would have been raised before (gws's
// Recovery, around OnMessage, logs it and keeps the process).
func (p *handlerPool) run(f func()) {
	var h *handler
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		h = p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
	} else {
		p.mu.Unlock()
		h = &handler{jobs: make(chan func()), done: make(chan any, 1)}
		go h.work()
	}
	h.jobs <- f
	pv := <-h.done
	p.mu.Lock()
	if pv != nil || p.closed || len(p.idle) >= maxIdleHandlers {
		// A goroutine that panicked or exited is not reused either.
		p.mu.Unlock()
		close(h.jobs)
	} else {
		p.idle = append(p.idle, h)
		p.mu.Unlock()
	}
	if pv != nil {
		panic(pv)
	}
}

// work runs callbacks until jobs is closed.
func (h *handler) work() {
	for f := range h.jobs {
		h.call(f)
	}
}

// call runs f and answers on done.
func (h *handler) call(f func()) {
	panicked := true
	defer func() {
		var pv any
		if panicked {
			if pv = recover(); pv == nil {
				pv = errHandlerExited
			}
		}
		h.done <- pv
	}()
	f()
	panicked = false
}

// close ends the idle goroutines; later callbacks get one each, which
// ends after it.
func (p *handlerPool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, h := range idle {
		close(h.jobs)
	}
}

// OnOpen starts a connection: welcome at once when the upgrade carried a
// valid token, otherwise wait for hello.
func (s *Server) OnOpen(c *gws.Conn) { s.handlers.run(func() { s.onOpen(c) }) }

func (s *Server) onOpen(c *gws.Conn) {
	sess := sessionOf(c)
	if sess.headerAuth {
		if err := sess.authenticate(); err != nil {
			return
		}
		sess.welcome("")
		return
	}
	// A timer rather than a read deadline, so that the close says 4001.
	time.AfterFunc(s.cfg.HelloTimeout, func() {
		if !sess.authed.Load() {
			sess.closeWith(protocol.CloseHelloLate)
		}
	})
	_ = c.SetReadDeadline(s.cfg.Now().Add(s.cfg.HelloTimeout + 5*time.Second))
}

// OnClose forgets the connection.
func (s *Server) OnClose(c *gws.Conn, err error) {
	sess := sessionOf(c)
	if !sess.closing.Swap(true) {
		// Not closed by closeWith: the WebSocket library closed it with a
		// code of its own (a frame too large, a protocol error), or the
		// client or the network ended it.
		if code, ok := err.(interface{ Uint16() uint16 }); ok && s.metrics.Closes != nil {
			s.metrics.Closes.Inc(code.Uint16())
		}
	}
	sess.stopExpiry()
	if t := sess.idle.Load(); t != nil {
		t.Stop()
	}
	if sess.entry != nil {
		s.hub.unregister(sess, sess.entry)
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		if err := s.presence.Disconnected(ctx, sess.user, sess.id); err != nil {
			s.cfg.Logger.Warn("presence not updated on close", "user", sess.user, "err", err)
		}
		cancel()
	}
	s.untrack(sess)
}

// OnPing answers a WebSocket ping; it counts as activity.
func (s *Server) OnPing(c *gws.Conn, payload []byte) { s.handlers.run(func() { s.onPing(c, payload) }) }

func (s *Server) onPing(c *gws.Conn, payload []byte) {
	sess := sessionOf(c)
	if sess.entry != nil {
		sess.touch()
	}
	// A deadline of its own: the one the last push set may have passed,
	// and a pong failing on it would close a healthy idle connection.
	_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_ = c.WritePong(payload)
}

// OnPong counts as activity.
func (s *Server) OnPong(c *gws.Conn, _ []byte) { s.handlers.run(func() { s.onPong(c) }) }

func (s *Server) onPong(c *gws.Conn) {
	if sess := sessionOf(c); sess.entry != nil {
		sess.touch()
	}
}

// OnMessage handles one frame, waited for by the connection's read loop:
// requests of one connection are handled in order, so its sends get seqs
// in send order.
func (s *Server) OnMessage(c *gws.Conn, m *gws.Message) { s.handlers.run(func() { s.onMessage(c, m) }) }

func (s *Server) onMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	inc(s.metrics.FramesIn)
	sess := sessionOf(c)
	data := m.Bytes()
	if sess.entry == nil {
		sess.hello(data)
		return
	}
	sess.touch()
	if m.Opcode != gws.OpcodeText {
		sess.reply(protocol.Errorf(protocol.CodeBadRequest, "frames must be text: one JSON object each"))
		return
	}
	var req protocol.Request
	if err := decodeRequest(data, &req); err != nil {
		err.ID = salvageID(data)
		sess.reply(err)
		return
	}
	if req.Type != protocol.TypePing && req.Type != protocol.TypeHello && !sess.limiter.allow(s.cfg.Now()) {
		if sess.limiter.denied > s.cfg.AbuseLimit {
			sess.closeWith(protocol.CloseAbuse)
			return
		}
		refused(s.metrics.Refused, RefusedRate)
		e := protocol.Errorf(protocol.CodeRateLimited, "too many requests; slow down")
		e.ID = req.ID
		sess.reply(e)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	sess.busy.Store(true)
	defer sess.busy.Store(false)
	resp := sess.handle(ctx, &req)
	if resp != nil {
		sess.reply(resp)
	}
	// Frames that arrived while this request was handled are waiting to be
	// read: the connection was not idle.
	sess.touch()
}

// decodeRequest parses a frame, refusing what is not UTF-8 JSON with a type.
func decodeRequest(data []byte, req *protocol.Request) *protocol.Error {
	if !utf8.Valid(data) {
		return protocol.Errorf(protocol.CodeBadRequest, "frame is not valid UTF-8")
	}
	if err := protocol.DecodeRequest(data, req); err != nil {
		return protocol.Errorf(protocol.CodeBadRequest, "frame is not a JSON object of the protocol: %v", err)
	}
	if req.Type == "" {
		return protocol.Errorf(protocol.CodeBadRequest, "frame has no type")
	}
	return nil
}

// salvageID returns the string id of a frame that did not decode as a
// request (a field of the wrong type, say), so the error still answers it.
func salvageID(data []byte) string {
	var f struct {
		ID string `json:"id"`
	}
	if utf8.Valid(data) && json.Unmarshal(data, &f) == nil {
		return f.ID
	}
	return ""
}

// hello authenticates a connection that had no Authorization header.
func (sess *session) hello(data []byte) {
	var req protocol.Request
	if err := decodeRequest(data, &req); err != nil || req.Type != protocol.TypeHello {
		sess.closeWith(protocol.CloseNotHello)
		return
	}
	if req.Token == "" {
		sess.closeWith(protocol.CloseHelloNoToken)
		return
	}
	uid, until, err := sess.srv.verify(req.Token)
	if err != nil {
		sess.closeWith(protocol.CloseBadToken)
		return
	}
	sess.expiry.until = until
	if len(req.Device) > protocol.MaxDeviceBytes {
		sess.closeWith(protocol.CloseDeviceTooLong)
		return
	}
	sess.user = uid
	sess.device = req.Device
	if err := sess.authenticate(); err != nil {
		return
	}
	sess.welcome(req.ID)
}

// authenticate registers the session's user in the hub and records the
// connection's presence.
func (sess *session) authenticate() error {
	ctx, cancel := context.WithTimeout(context.Background(), sess.srv.cfg.RequestTimeout)
	defer cancel()
	if err := sess.refuseErased(ctx); err != nil {
		return err
	}
	e, err := sess.srv.hub.register(ctx, sess)
	if errors.Is(err, errTooManyConns) {
		refused(sess.srv.metrics.Refused, RefusedConnsPerUser)
		sess.closeWith(protocol.CloseTooManyConns)
		return err
	}
	if err != nil {
		sess.srv.cfg.Logger.Warn("register connection failed", "user", sess.user, "err", err)
		sess.closeWith(protocol.CloseBackendDown)
		return err
	}
	sess.entry = e
	sess.authed.Store(true)
	sess.armExpiry(sess.expiry.until)
	sess.touch()
	sess.idle.Store(time.AfterFunc(sess.idleAfter(), sess.checkIdle))
	if err := sess.srv.presence.Connected(ctx, sess.user, sess.id, sess.device); err != nil {
		sess.srv.cfg.Logger.Warn("presence not recorded", "user", sess.user, "err", err)
	}
	return nil
}

func (sess *session) welcome(id string) {
	sess.reply(&protocol.Welcome{
		Type: protocol.TypeWelcome, ID: id, User: sess.user, Session: sess.id,
		Heartbeat: int(sess.srv.cfg.Heartbeat / time.Second), Device: sess.device,
		ServerTime: protocol.FormatTime(sess.srv.cfg.Now()),
	})
}

// idleGrace is how long past the idle close the read deadline is: a
// backstop for a socket the close frame cannot reach.
const idleGrace = 5 * time.Second

// touch extends the connection's life by two heartbeats.
func (sess *session) touch() {
	now := sess.srv.cfg.Now()
	sess.lastActive.Store(now.UnixNano())
	_ = sess.conn.SetReadDeadline(now.Add(sess.idleAfter() + idleGrace))
}

func (sess *session) idleAfter() time.Duration { return 2 * sess.srv.cfg.Heartbeat }

// checkIdle runs on the idle timer: it closes a connection silent for
// two heartbeats, with a close frame that says so, or waits for the rest
// of the two heartbeats since the last frame. A timer rather than the
// read deadline alone, whose expiry gws would report as a read error
// naming both addresses. A connection whose request is still being
// handled is not idle, however long that takes: its frames wait unread
// (as with the read deadline, which only a read can miss).
func (sess *session) checkIdle() {
	if sess.closing.Load() {
		return
	}
	left := time.Duration(sess.lastActive.Load()+int64(sess.idleAfter())) - time.Duration(sess.srv.cfg.Now().UnixNano())
	if sess.busy.Load() {
		left = sess.idleAfter()
	}
	if left > 0 {
		if t := sess.idle.Load(); t != nil {
			t.Reset(left)
		}
		return
	}
	sess.closeWith(protocol.CloseIdle)
}

// reply encodes v, unless it is an encodedFrame, and queues it.
func (sess *session) reply(v any) {
	if f, ok := v.(encodedFrame); ok {
		sess.push(f)
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		sess.srv.cfg.Logger.Error("encode reply failed", "err", err)
		return
	}
	sess.push(data)
}

// push queues a frame for writing. frame must not change afterwards; the
// same bytes may be queued to many sessions. A connection whose queue
// outgrows MaxPendingBytes is closed with 4008.
// Only a request's handler pushes (its replies), which the connection's
// read loop waits for: when no writer runs, it writes them itself
// (enqueue), rather than start a goroutine for it.
func (sess *session) push(frame []byte) { sess.pushFrame(queued{data: frame}, true) }

// pushFrame queues q: inline, on a handler of this connection's
// requests, as push does; else (the hub's pushes) a writer of its own
// writes it.
func (sess *session) pushFrame(q queued, inline bool) {
	if sess.closing.Load() {
		return
	}
	n := int64(len(q.data))
	if sess.pending.Add(n) > sess.srv.cfg.MaxPendingBytes {
		sess.pending.Add(-n)
		sess.closeWith(protocol.CloseQueueFull)
		return
	}
	inc(sess.srv.metrics.FramesOut)
	sess.enqueue(q, inline)
}

// closeWith closes the connection with code and reason, once. A write stuck
// on a client that does not read is cut short first, so the close cannot
// hang behind it.
func (sess *session) closeWith(cl protocol.Close) {
	code, reason := cl.Code, cl.Reason
	if !sess.closing.CompareAndSwap(false, true) || sess.conn == nil {
		return
	}
	if m := sess.srv.metrics.Closes; m != nil {
		m.Inc(code)
	}
	c := sess.conn
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	go func() { _ = c.WriteClose(code, []byte(reason)) }()
}
