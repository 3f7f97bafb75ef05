package gateway

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/tracing"
)

// BenchmarkDecodeRequest is the decode every client frame goes through.
func BenchmarkDecodeRequest(b *testing.B) {
	frame := []byte(`{"type":"send","id":"42","conv":"g_AbCdEfGhIjKlMnOpQrStUv","client_id":"5f0c8a6e-3b1d-4c55-9a51-2b7d1f0e9c11","body":{"text":"the quick brown fox jumps over the lazy dog, twice: the quick brown fox"}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		var req protocol.Request
		if err := decodeRequest(frame, &req); err != nil {
			b.Fatal(err)
		}
	}
}

// counter is the client side of a benchmark socket: it counts frames.
type counter struct {
	gws.BuiltinEventHandler
	n *atomic.Int64
}

func (c counter) OnMessage(_ *gws.Conn, m *gws.Message) {
	c.n.Add(1)
	_ = m.Close()
}

// benchSockets connects n gws server connections to gws clients that
// count what they read, over real loopback TCP or net.Pipe. One process
// may hold 20,000 open files and a loopback socket costs two (both ends
// live here), so 10,000 sockets can only be driven over pipes; the TCP
// variant with fewer sockets shows what the kernel adds.
func benchSockets(b *testing.B, n int, tcp bool, received *atomic.Int64) []*gws.Conn {
	b.Helper()
	up := gws.NewUpgrader(gws.BuiltinEventHandler{}, &gws.ServerOption{})
	var ln net.Listener
	if tcp {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
	}
	conns := make([]*gws.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	errs := make(chan error, n)
	for i := range conns {
		var srvEnd, cliEnd net.Conn
		if tcp {
			var err error
			if cliEnd, err = net.Dial("tcp", ln.Addr().String()); err != nil {
				b.Fatal(err)
			}
			if srvEnd, err = ln.Accept(); err != nil {
				b.Fatal(err)
			}
		} else {
			srvEnd, cliEnd = net.Pipe()
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			done := make(chan struct{})
			go func() {
				defer close(done)
				br := bufio.NewReader(srvEnd)
				req, err := http.ReadRequest(br)
				if err != nil {
					errs <- err
					return
				}
				c, err := up.UpgradeFromConn(srvEnd, br, req)
				if err != nil {
					errs <- err
					return
				}
				conns[i] = c
			}()
			cli, _, err := gws.NewClientFromConn(counter{n: received}, &gws.ClientOption{Addr: "ws://127.0.0.1/v1/ws"}, cliEnd)
			if err != nil {
				errs <- err
				return
			}
			<-done
			go cli.ReadLoop()
			b.Cleanup(func() { cli.NetConn().Close() })
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return conns
}

// BenchmarkDeliver measures the gateway's delivery path for one message
// to every connected member: hub.deliver finds the user's sessions and
// session.push queues the shared frame on each socket, which gws writes.
// One op is one message to all sockets (burst messages with burst > 1, all
// delivered before the first is waited for, as a busy fan-out does), waited
// for until every client has read it. "traced" is the same with tracing on:
// each push carries a traceparent and gets a recorded span (the SDK with
// no exporter, so the cost is the gateway's, not an export's).
func BenchmarkDeliver(b *testing.B) {
	for _, tc := range []struct {
		sockets int
		tcp     bool
		burst   int
		traced  bool
	}{{10_000, false, 1, false}, {4_000, false, 1, false}, {4_000, false, 1, true}, {4_000, true, 1, false}, {4_000, true, 8, false}} {
		name := fmt.Sprintf("sockets=%d/pipe", tc.sockets)
		if tc.tcp {
			name = fmt.Sprintf("sockets=%d/tcp", tc.sockets)
		}
		if tc.burst > 1 {
			name += fmt.Sprintf("/burst=%d", tc.burst)
		}
		if tc.traced {
			name += "/traced"
		}
		b.Run(name, func(b *testing.B) {
			var received atomic.Int64
			conns := benchSockets(b, tc.sockets, tc.tcp, &received)
			srv := &Server{cfg: Config{}.withDefaults()}
			header := nats.Header{schema.HeaderOrigin: []string{"another-session"}}
			if tc.traced {
				tp := sdktrace.NewTracerProvider()
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
				srv.tracer = tp.Tracer("bench")
				ctx, span := tp.Tracer("fanout").Start(context.Background(), "deliver")
				tracing.Inject(ctx, header)
				span.End()
			}
			h := &hub{srv: srv, users: make(map[string]*userEntry)}
			msgs := make([]*nats.Msg, len(conns))
			frame := []byte(`{"type":"message","conv":"g_AbCdEfGhIjKlMnOpQrStUv","seq":123456789,"sender":"alice-0123456789","client_id":"5f0c8a6e-3b1d-4c55-9a51-2b7d1f0e9c11","ts":"2026-11-27T01:39:17.753960963Z","body":{"text":"the quick brown fox jumps over the lazy dog"}}`)
			for i, c := range conns {
				uid := fmt.Sprintf("user-%d", i)
				s := &session{srv: srv, conn: c, id: fmt.Sprintf("s%d", i), user: uid}
				h.users[uid] = &userEntry{uid: uid, sessions: []*session{s}}
				msgs[i] = &nats.Msg{Subject: schema.User(uid, schema.EventMessage), Data: frame, Header: header}
			}
			b.ReportAllocs()
			start, cpu0 := time.Now(), cpuTime()
			var want int64
			for b.Loop() {
				for range tc.burst {
					for _, m := range msgs {
						h.deliver(m)
					}
				}
				want += int64(tc.burst * len(msgs))
				for received.Load() < want {
					time.Sleep(50 * time.Microsecond)
				}
			}
			b.ReportMetric(float64(want)/time.Since(start).Seconds(), "deliveries/s")
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(want), "ns/delivery")
			// CPU time is what a loaded machine does not distort: the
			// process's user+system time, the clients' reads included.
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(want), "cpu-ns/delivery")
		})
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHandlerPool is what running a handler off the read loop adds
// per frame (issue 19), for a handler as shallow as a pong and for one
// that needs an 8 KiB stack: "direct" calls it, "fresh" starts a goroutine
// for it (whose stack grows from 2 KiB each time), "pool" is what the
// gateway does.
func BenchmarkHandlerPool(b *testing.B) {
	for _, depth := range []int{0, 60} {
		b.Run(fmt.Sprintf("depth=%d/direct", depth), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				func() { deepFrames(depth) }()
			}
		})
		b.Run(fmt.Sprintf("depth=%d/fresh", depth), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				done := make(chan struct{})
				go func() {
					defer close(done)
					deepFrames(depth)
				}()
				<-done
			}
		})
		b.Run(fmt.Sprintf("depth=%d/pool", depth), func(b *testing.B) {
			b.ReportAllocs()
			var p handlerPool
			defer p.close()
			for range b.N {
				p.run(func() { deepFrames(depth) })
			}
		})
	}
}

// deepFrames recurses n times with about 128 bytes per frame.
//
//go:noinline
func deepFrames(n int) byte {
	var pad [100]byte
	pad[n%100] = byte(n)
	if n == 0 {
		return pad[0]
	}
	return deepFrames(n-1) + pad[n%100]
}
