package app

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
)

// startTimeoutApp runs a gateway whose HTTP server has a 1 s read and
// idle timeout and a 1 s heartbeat.
func startTimeoutApp(t *testing.T) *App {
	t.Helper()
	cfg := testConfig(t, Roles{Gateway: true})
	cfg.HTTPReadTimeout, cfg.HTTPIdleTimeout = time.Second, time.Second
	cfg.Gateway.Heartbeat = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	return a
}

// closedWithin reports whether the server closes conn within d, reading
// (and dropping) whatever it sends meanwhile.
func closedWithin(conn net.Conn, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	ne, ok := err.(net.Error)
	return !(ok && ne.Timeout())
}

// TestSlowRequestIsCut: a request whose body trickles in is cut after
// HTTPReadTimeout instead of holding a connection (and its goroutine)
// for as long as the sender likes.
func TestSlowRequestIsCut(t *testing.T) {
	a := startTimeoutApp(t)
	conn, err := net.Dial("tcp", a.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one body byte every 100 ms: 100 s for the whole body
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := conn.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	if !closedWithin(conn, 4*time.Second) {
		t.Fatal("a request trickling its body was still open after 4 s (read timeout 1 s)")
	}
}

// TestIdleKeepAliveIsClosed: a keep-alive connection that sends no next
// request is closed after HTTPIdleTimeout.
func TestIdleKeepAliveIsClosed(t *testing.T) {
	a := startTimeoutApp(t)
	conn, err := net.Dial("tcp", a.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	if !closedWithin(conn, 4*time.Second) {
		t.Fatal("an idle keep-alive connection was still open after 4 s (idle timeout 1 s)")
	}
}

// TestWebSocketOutlivesReadTimeout: the read deadline net/http set for
// the upgrade request does not survive the hijack; a WebSocket that
// sends only heartbeats stays up for several read timeouts.
func TestWebSocketOutlivesReadTimeout(t *testing.T) {
	a := startTimeoutApp(t)
	tok, err := auth.IssueHS256(a.cfg.Auth.Secret, "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, a.WebSocketURL(), client.Options{Token: tok, KeepAlive: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("heartbeat failed after %v: %v", 4*time.Second-time.Until(deadline), err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	select {
	case <-c.Done():
		t.Fatalf("the WebSocket closed: %v", c.Err())
	default:
	}
}
