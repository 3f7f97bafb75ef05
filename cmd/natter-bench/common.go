package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
)

// devSecretFile is where natter serve --dev keeps its generated secret.
const devSecretFile = "dev-jwt-secret"

// common holds the flags every scenario shares.
type common struct {
	urls        []string
	data        string
	secret      string
	prefix      string
	duration    time.Duration
	jsonOut     bool
	serverPIDs  []int
	metricsURLs []string
	compression bool
	ipBase      int
	ips         int
	dialers     int
	eventBuffer int
	keepAlive   time.Duration
	delivered   time.Duration

	clients []*http.Client
}

func (c *common) register(fs *flag.FlagSet, defDuration time.Duration) (finish func() error) {
	url := fs.String("url", "ws://127.0.0.1:8080/v1/ws", "WebSocket URL of a gateway, or a comma-separated list (connections go round-robin)")
	secret := fs.String("jwt-secret", os.Getenv("NATTER_JWT_SECRET"), "HS256 secret the server verifies with (env NATTER_JWT_SECRET)")
	data := fs.String("data", "", "the server's --data directory: its dev JWT secret is used when --jwt-secret is empty")
	fs.StringVar(&c.prefix, "prefix", "", "user id prefix (default: random, so runs do not collide)")
	fs.DurationVar(&c.duration, "duration", defDuration, "how long the measured phase lasts")
	fs.BoolVar(&c.jsonOut, "json", false, "print the result as one JSON object")
	pids := fs.String("server-pid", "", "pid(s) of the server process(es), comma-separated: RSS and CPU are read from /proc")
	metrics := fs.String("metrics-url", "", "base URL(s) of the servers' --metrics listeners, comma-separated (e.g. http://127.0.0.1:9090): RSS is read from their /metrics when no --server-pid is given")
	fs.BoolVar(&c.compression, "compression", false, "offer permessage-deflate")
	fs.IntVar(&c.ipBase, "ip-base", 1, "first source address: 127.0.0.<ip-base>")
	fs.IntVar(&c.ips, "ips", 0, "source addresses to spread connections over (127.0.0.<ip-base>…); 0: one per 4,000 connections")
	fs.IntVar(&c.dialers, "dialers", 64, "connections dialled concurrently")
	fs.DurationVar(&c.keepAlive, "keepalive", 0, "WebSocket ping interval (0: heartbeat_s/2 as the server announces)")
	fs.DurationVar(&c.delivered, "delivered-delay", 0, "how long each client gathers the messages it receives before one delivered report per conversation (0: the client library's 1 s; negative: no reports)")
	return func() error {
		c.urls = strings.Split(*url, ",")
		for _, m := range strings.Split(*metrics, ",") {
			if m = strings.TrimRight(strings.TrimSpace(m), "/"); m != "" {
				c.metricsURLs = append(c.metricsURLs, m)
			}
		}
		c.secret = *secret
		c.data = *data
		if c.secret == "" && *data != "" {
			b, err := os.ReadFile(filepath.Join(*data, devSecretFile))
			if err != nil {
				return fmt.Errorf("no --jwt-secret and no dev secret: %w", err)
			}
			c.secret = strings.TrimSpace(string(b))
		}
		if c.secret == "" {
			return errors.New("no JWT secret: give --jwt-secret or --data of a --dev server")
		}
		if c.prefix == "" {
			var b [3]byte
			_, _ = rand.Read(b[:])
			c.prefix = "b" + hex.EncodeToString(b[:])
		}
		for _, p := range strings.Split(*pids, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			var pid int
			if _, err := fmt.Sscan(p, &pid); err != nil {
				return fmt.Errorf("bad --server-pid %q", p)
			}
			c.serverPIDs = append(c.serverPIDs, pid)
		}
		return nil
	}
}

// setupClients builds one HTTP client per source address for n connections.
func (c *common) setupClients(n int) {
	ips := c.ips
	if ips <= 0 {
		ips = (n + 3999) / 4000
	}
	if c.ipBase+ips-1 > 254 {
		ips = 255 - c.ipBase
	}
	c.clients = make([]*http.Client, ips)
	for i := range c.clients {
		d := &net.Dialer{
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(c.ipBase+i))},
			Timeout:   30 * time.Second,
		}
		c.clients[i] = &http.Client{Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: -1,
			DisableCompression:  true,
		}}
	}
}

func (c *common) user(kind string, i int) string { return fmt.Sprintf("%s-%s%d", c.prefix, kind, i) }

// dial connects connection number i as uid.
func (c *common) dial(ctx context.Context, i int, uid string) (*client.Client, error) {
	if c.clients == nil {
		c.setupClients(1)
	}
	tok, err := auth.IssueHS256(c.secret, uid, 24*time.Hour, time.Now())
	if err != nil {
		return nil, err
	}
	ka := c.keepAlive
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return client.Dial(ctx, c.urls[i%len(c.urls)], client.Options{
		Token:       tok,
		HeaderAuth:  true,
		Compression: c.compression,
		HTTPClient:  c.clients[i%len(c.clients)],
		EventBuffer: c.eventBuffer,
		KeepAlive:   ka,
		// Reports on by default, as every client library sends them.
		DeliveredDelay: c.delivered,
	})
}

// dialAll connects users[i] for every i with c.dialers at a time; failed
// slots stay nil. onConn runs for every connection made.
func (c *common) dialAll(ctx context.Context, users []string, progress *progress, onConn func(i int, cl *client.Client)) (conns []*client.Client, failed int64, firstErr error) {
	conns = make([]*client.Client, len(users))
	var next atomic.Int64
	var nfail atomic.Int64
	var errOnce sync.Once
	var wg sync.WaitGroup
	for w := 0; w < c.dialers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(users) || ctx.Err() != nil {
					return
				}
				cl, err := c.dial(ctx, i, users[i])
				if err != nil {
					nfail.Add(1)
					errOnce.Do(func() { firstErr = err })
					if progress != nil {
						progress.failed.Add(1)
					}
					continue
				}
				conns[i] = cl
				if onConn != nil {
					onConn(i, cl)
				}
				if progress != nil {
					progress.connected.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return conns, nfail.Load(), firstErr
}

func closeAll(conns []*client.Client) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, cl := range conns {
		if cl == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			done := make(chan struct{})
			go func() { _ = cl.Close(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
			}
		}()
	}
	wg.Wait()
}

// progress is the counters the progress line shows.
type progress struct {
	name      string
	start     time.Time
	connected atomic.Int64
	failed    atomic.Int64
	sent      atomic.Int64
	acked     atomic.Int64
	delivered atomic.Int64
	errors    atomic.Int64
	extra     func() string
}

// run prints a progress line every second until ctx ends.
func (p *progress) run(ctx context.Context, w io.Writer) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastDel, lastAck int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d, a := p.delivered.Load(), p.acked.Load()
		line := fmt.Sprintf("[%s %5.1fs] conns=%d failed=%d sent=%d acked=%d (%d/s) delivered=%d (%d/s) errors=%d",
			p.name, time.Since(p.start).Seconds(), p.connected.Load(), p.failed.Load(), p.sent.Load(),
			a, a-lastAck, d, d-lastDel, p.errors.Load())
		if p.extra != nil {
			line += " " + p.extra()
		}
		fmt.Fprintln(w, line)
		lastDel, lastAck = d, a
	}
}

// result is one scenario's outcome: ordered rows for the table and the
// same values for --json.
type result struct {
	Scenario string         `json:"scenario"`
	Params   map[string]any `json:"params"`
	Values   map[string]any `json:"values"`
	Latency  map[string]any `json:"latency_us,omitempty"`
	order    []string
}

func newResult(scenario string) *result {
	return &result{Scenario: scenario, Params: map[string]any{}, Values: map[string]any{}, Latency: map[string]any{}}
}

func (r *result) set(k string, v any) {
	if _, ok := r.Values[k]; !ok {
		r.order = append(r.order, k)
	}
	r.Values[k] = v
}

func (r *result) print(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\t%s\n", r.Scenario)
	keys := make([]string, 0, len(r.Params))
	for k := range r.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(tw, "  %s\t%v\n", k, r.Params[k])
	}
	for _, k := range r.order {
		fmt.Fprintf(tw, "%s\t%v\n", k, format(r.Values[k]))
	}
	if len(r.Latency) > 0 {
		fmt.Fprintln(tw, "latency (µs)\tp50\tp90\tp99\tp999\tmax\tcount")
		names := make([]string, 0, len(r.Latency))
		for k := range r.Latency {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			s := r.Latency[k].(latencySummary)
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%d\n", k, s.P50, s.P90, s.P99, s.P999, s.Max, s.Count)
		}
	}
	return tw.Flush()
}

func format(v any) any {
	if f, ok := v.(float64); ok {
		return fmt.Sprintf("%.1f", f)
	}
	return v
}

// newBody returns a message body of about size bytes carrying the send time.
func newBody(t time.Time, size int) json.RawMessage {
	pad := size - 30
	if pad < 0 {
		pad = 0
	}
	b := make([]byte, 0, size+8)
	b = append(b, `{"t":`...)
	b = fmt.Appendf(b, "%d", t.UnixNano())
	b = append(b, `,"p":"`...)
	for range pad {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// sentAt finds the send time in a message frame without decoding it all:
// the body is the frame's last field, {"t":<ns>,…}.
func sentAt(frame []byte) (time.Time, bool) {
	const key = `"body":{"t":`
	i := bytes.LastIndex(frame, []byte(key))
	if i < 0 {
		return time.Time{}, false
	}
	var ns int64
	j := i + len(key)
	for ; j < len(frame) && frame[j] >= '0' && frame[j] <= '9'; j++ {
		ns = ns*10 + int64(frame[j]-'0')
	}
	return time.Unix(0, ns), ns > 0
}

// seqOf returns the "seq" of a message frame.
func seqOf(frame []byte) uint64 {
	const key = `"seq":`
	i := bytes.Index(frame, []byte(key))
	if i < 0 {
		return 0
	}
	var n uint64
	for j := i + len(key); j < len(frame) && frame[j] >= '0' && frame[j] <= '9'; j++ {
		n = n*10 + uint64(frame[j]-'0')
	}
	return n
}
