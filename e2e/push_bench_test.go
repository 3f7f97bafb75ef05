package e2e

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// BenchmarkPush: NATTER_BENCH_PUSHES (default 1,000) offline users, each
// with one device (apns or webpush; none: no device, the baseline) in a
// direct conversation with a
// sender; the sender sends one message to each, and the run ends when the
// fake provider has accepted every notification and every consumer of
// CHAT has acknowledged everything. A push costs the platform's figure
// minus none's. It reports the process's
// CPU per notification of a second round (the first warms up; cpu-µs/push,
// user + system from getrusage over the sends and deliveries: the whole natter pipeline, stream write,
// fan-out, push dispatcher, provider request, and also the fake provider
// in the same process, which verifies the JWT and, for Web Push, decrypts
// the payload, so it is an upper bound) and the rate. The coalescing
// window (0.6 s here) adds latency, not CPU. Run with -benchtime 1x.
//
//	go test ./e2e/ -run '^$' -bench BenchmarkPush -benchtime 1x
func BenchmarkPush(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("NATTER_BENCH_PUSHES")); err == nil && v > 0 {
		n = v
	}
	for _, platform := range []string{"none", "apns", "webpush"} {
		b.Run(platform, func(b *testing.B) {
			p := newProviders(b)
			e := start(b, p.config(b, false), func(c *app.Config) {
				c.Gateway.RateBurst, c.Gateway.RateSustained = 1_000_000, 1_000_000
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
			defer cancel()
			nc, err := nats.Connect(e.app.NATS().OperatorURL(), nats.Name("push-bench"))
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			sender := e.dial(b, "sender")
			discardEvents(sender)
			convs := make([]string, n)
			users := make([]string, n)
			for i := range n {
				users[i] = fmt.Sprintf("pu%d", i)
				c := e.dial(b, users[i])
				token := fmt.Sprintf("%064x", i+1)
				if platform == "webpush" {
					token = p.web.Subscribe()
				}
				if platform != "none" {
					if _, err := c.RegisterDevice(ctx, platform, token); err != nil {
						b.Fatal(err)
					}
				}
				d, err := c.CreateDirect(ctx, "sender")
				if err != nil {
					b.Fatal(err)
				}
				convs[i] = d.Conv
				_ = c.Close()
			}
			waitAllOffline(b, sender, users)
			// A first round warms what a running server has warm (the
			// provider connection, member and device caches); the second,
			// after the coalescing window, is measured.
			var cpu, wall time.Duration
			for round := range 2 {
				before := p.total()
				if prof := os.Getenv("NATTER_BENCH_PUSH_PROFILE"); prof != "" && round == 1 {
					stop := startCPUProfile(b, prof+"."+platform)
					defer stop()
				}
				cpu0, t0 := procCPU(b), time.Now()
				for i, conv := range convs {
					if _, err := sender.Send(ctx, conv, client.NewClientID(), text(fmt.Sprintf("push bench %d.%d", round, i))); err != nil {
						b.Fatal(err)
					}
				}
				want := n
				if platform == "none" {
					want = 0
				}
				for p.total()-before < want || !quiet(ctx, b, js) {
					if ctx.Err() != nil {
						b.Fatalf("%d of %d notifications delivered", p.total()-before, want)
					}
					time.Sleep(5 * time.Millisecond)
				}
				cpu, wall = procCPU(b)-cpu0, time.Since(t0)
				time.Sleep(3 * pushWin)
				if got := p.total() - before; got != want {
					b.Fatalf("%d notifications for %d messages, want %d", got, n, want)
				}
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/push")
			b.ReportMetric(float64(n)/wall.Seconds(), "pushes/s")
		})
	}
}

// quiet reports whether the consumers of CHAT that serve runs here
// (fan-out, history, push) have acknowledged everything: the pipeline is
// done with what was sent.
func quiet(ctx context.Context, tb testing.TB, js jetstream.JetStream) bool {
	st, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		tb.Fatal(err)
	}
	for c := range st.ListConsumers(ctx).Info() {
		name := c.Name
		if name != schema.ConsumerHistory && name != schema.ConsumerPush && !strings.HasPrefix(name, schema.ConsumerFanout) {
			continue
		}
		if c.NumPending > 0 || c.NumAckPending > 0 {
			return false
		}
	}
	return true
}

// total is how many notifications both fakes accepted.
func (p *providers) total() int {
	a, w := p.counts()
	return a + w
}

// waitAllOffline polls presence until none of users is online.
func waitAllOffline(tb testing.TB, c *client.Client, users []string) {
	deadline := time.Now().Add(5 * time.Minute)
	for i := 0; i < len(users); {
		j := min(i+100, len(users))
		m, err := request(tb, c, map[string]any{"type": protocol.TypePresence, "users": users[i:j]})
		if err != nil {
			tb.Fatal(err)
		}
		online := false
		for _, u := range m["users"].(map[string]any) {
			if u.(map[string]any)["online"] == true {
				online = true
			}
		}
		if !online {
			i = j
			continue
		}
		if time.Now().After(deadline) {
			tb.Fatal("users still online after 5 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startCPUProfile profiles the process's CPU into path until the
// returned func is called.
func startCPUProfile(tb testing.TB, path string) func() {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		tb.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

// procCPU is the process's user and system CPU so far.
func procCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
