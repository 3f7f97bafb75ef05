package gateway

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/nats/natstest"
)

// rawWS is a WebSocket client without a goroutine: the test reads each
// reply itself, so the only stacks a connection adds to the process are
// the gateway's own.
type rawWS struct {
	c  net.Conn
	br *bufio.Reader
}

// dialRaw upgrades a TCP connection to the harness's gateway; with
// header, the token goes in the Authorization header, otherwise in a
// hello frame.
func (h *harness) dialRaw(t *testing.T, user string, header bool) *rawWS {
	t.Helper()
	tok, err := auth.IssueHS256(testSecret, user, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(strings.TrimSuffix(h.url, "/v1/ws"), "ws://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	var auth string
	if header {
		auth = "Authorization: Bearer " + tok + "\r\n"
	}
	fmt.Fprintf(c, "GET /v1/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", host, auth)
	ws := &rawWS{c: c, br: bufio.NewReader(c)}
	resp, err := http.ReadResponse(ws.br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if !header {
		ws.send(t, 0x1, `{"type":"hello","token":"`+tok+`"}`)
	}
	if op, body := ws.read(t); op != 0x1 || !strings.Contains(body, `"welcome"`) {
		t.Fatalf("first frame: opcode %d %s; want the welcome", op, body)
	}
	return ws
}

// send writes one masked frame (the mask is zero: XOR leaves the payload).
func (ws *rawWS) send(t *testing.T, op byte, payload string) {
	t.Helper()
	if len(payload) > 125 {
		hdr := []byte{0x80 | op, 0x80 | 126, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(hdr[2:], uint16(len(payload)))
		_, err := ws.c.Write(append(hdr, payload...))
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := ws.c.Write(append([]byte{0x80 | op, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)); err != nil {
		t.Fatal(err)
	}
}

// read returns the next unmasked frame from the server.
func (ws *rawWS) read(t *testing.T) (byte, string) {
	t.Helper()
	var hdr [2]byte
	if _, err := io.ReadFull(ws.br, hdr[:]); err != nil {
		t.Fatal(err)
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(ws.br, ext[:]); err != nil {
			t.Fatal(err)
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(ws.br, ext[:]); err != nil {
			t.Fatal(err)
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(ws.br, body); err != nil {
		t.Fatal(err)
	}
	return hdr[0] & 0x0f, string(body)
}

// An idle connection's read loop goroutine, parked in conn.Read for the
// connection's life, keeps the runtime's smallest stack (2 KiB): the
// handlers (authentication, requests, pings) run on a goroutine of their
// own, so their depth never grows it. A goroutine's stack only shrinks
// back while under a quarter used, which a parked read never is, so a read
// loop that ran a handler once kept 4 KiB or more for good (issue 19: 4.2
// KiB of the 12.9 per idle connection).
func TestIdleConnectionReadLoopKeepsSmallStack(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector doubles the stack guard: no goroutine keeps a 2 KiB stack")
	}
	h := newHarness(t)
	const n = 300
	// The fake presence reports each connect and disconnect on a channel:
	// drain them all (the disconnects come as the test's cleanup closes
	// the sockets).
	go func() {
		for range 2 * n {
			<-h.presence.calls
		}
	}()
	var before runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	conns := make([]*rawWS, n)
	for i := range conns {
		ws := h.dialRaw(t, fmt.Sprintf("stack-%d", i), i%2 == 0)
		// A request and a WebSocket ping, answered, as a live idle client
		// sends them.
		ws.send(t, 0x1, `{"type":"ping","id":"p1"}`)
		if op, body := ws.read(t); op != 0x1 || !strings.Contains(body, `"p1"`) {
			t.Fatalf("ping reply: opcode %d %s", op, body)
		}
		ws.send(t, 0x9, "hb")
		if op, body := ws.read(t); op != 0xA || body != "hb" {
			t.Fatalf("pong: opcode %d %q", op, body)
		}
		conns[i] = ws
	}
	// GC shrinks what can shrink; twice, as the first may run concurrently
	// with the last handlers' goroutines exiting.
	time.Sleep(100 * time.Millisecond)
	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	added := runtime.NumGoroutine() - goroutines
	perConn := float64(int64(after.StackInuse)-int64(before.StackInuse)) / n
	t.Logf("%d connections: %d goroutines added, stacks %.0f bytes per connection", n, added, perConn)
	if added < n || added > n+n/10 {
		t.Fatalf("%d goroutines added for %d connections; want one read loop each", added, n)
	}
	if perConn > 3<<10 {
		t.Fatalf("goroutine stacks grew %.0f bytes per idle connection; want the read loop's 2 KiB (+ noise)", perConn)
	}
}

// The handler pool runs each callback to its end before run returns,
// raises a callback's panic again in the caller (where gws's Recovery
// catches OnMessage's), reuses idle goroutines, and leaves none behind
// once closed.
func TestHandlerPool(t *testing.T) {
	t.Cleanup(natstest.CheckGoroutines(t))
	var p handlerPool
	n := 0
	for range 3 {
		p.run(func() { n++ })
	}
	if n != 3 {
		t.Fatalf("ran %d callbacks of 3 before run returned", n)
	}
	p.mu.Lock()
	idle := len(p.idle)
	p.mu.Unlock()
	if idle != 1 {
		t.Fatalf("%d idle goroutines after 3 callbacks in turn; want the one, reused", idle)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v; want the callback's panic", r)
			}
		}()
		p.run(func() { panic("boom") })
		t.Fatal("run returned after a panic")
	}()
	p.close()
	p.run(func() { n++ }) // after close: a goroutine of its own, which ends
	if n != 4 {
		t.Fatalf("callback after close did not run")
	}
}

// A callback that panicked or ended its goroutine gives its goroutine
// back to nobody: run raises the panic (errHandlerExited for an exit)
// and the next callback runs on a goroutine that is alive.
func TestHandlerPoolAfterPanicAndExit(t *testing.T) {
	t.Cleanup(natstest.CheckGoroutines(t))
	var p handlerPool
	defer p.close()
	p.run(func() {})
	raised := func(f func()) (r any) {
		defer func() { r = recover() }()
		p.run(f)
		return nil
	}
	if r := raised(func() { panic("boom") }); r != "boom" {
		t.Fatalf("recovered %v; want the callback's panic", r)
	}
	if r := raised(runtime.Goexit); r != errHandlerExited {
		t.Fatalf("recovered %v after runtime.Goexit; want errHandlerExited", r)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3 {
			p.run(func() {})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("callbacks after a panic and an exit did not run: a dead goroutine was reused")
	}
	p.mu.Lock()
	idle := len(p.idle)
	p.mu.Unlock()
	if idle != 1 {
		t.Fatalf("%d idle goroutines; want 1", idle)
	}
}
