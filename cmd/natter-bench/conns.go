package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// shareReport is what one share of the connections reports, as a JSON
// line on a child's stdout.
type shareReport struct {
	Connected int64   `json:"connected"`
	Failed    int64   `json:"failed"`
	Held      bool    `json:"held"`      // every connection of the share was tried
	ConnectS  float64 `json:"connect_s"` // time to try them all
	Dropped   int64   `json:"dropped"`   // connections that ended while held
	Err       string  `json:"err,omitempty"`
}

func runConns(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("conns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	finish := c.register(fs, 30*time.Second)
	n := fs.Int("n", 1000, "connections to open")
	procs := fs.Int("procs", 1, "child processes to spread the connections over (each ≤ ~19,000 sockets)")
	settle := fs.Duration("settle", 10*time.Second, "wait after the last connection before reading the server's RSS")
	child := fs.Bool("child", false, "internal: run as a child of --procs")
	offset := fs.Int("offset", 0, "internal: first user index of this share")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return err
	}
	c.eventBuffer = 4
	if *child {
		return connsChild(ctx, &c, *n, *offset, stdout)
	}
	if *n/max(*procs, 1) > 19_000 {
		return fmt.Errorf("%d connections per process is past the 20,000 open files limit: raise --procs", *n / *procs)
	}
	res := newResult("conns")
	res.Params["n"], res.Params["procs"], res.Params["settle"], res.Params["url"] = *n, *procs, settle.String(), strings.Join(c.urls, ",")
	res.Params["load_avg_start"] = loadAvg()
	rss0, rssOK := c.serverRSS()

	p := &progress{name: "conns", start: time.Now()}
	pctx, pstop := context.WithCancel(ctx)
	defer pstop()
	go p.run(pctx, stderr)

	shares := splitShares(*n, max(*procs, 1))
	reports := make([]shareReport, len(shares))
	var mu sync.Mutex
	held := make(chan int, len(shares))
	release := make(chan struct{})
	var wg sync.WaitGroup
	var firstErr error
	ipsPer := c.ips
	if ipsPer <= 0 {
		ipsPer = (shares[0] + 3999) / 4000
	}
	off := 0
	for j, share := range shares {
		wg.Add(1)
		update := func(r shareReport) {
			mu.Lock()
			old := reports[j]
			reports[j] = r
			if r.Err != "" && firstErr == nil {
				firstErr = fmt.Errorf("share %d: %s", j, r.Err)
			}
			mu.Unlock()
			if r.Err != "" && r.Err != old.Err {
				// Each share's first error, and its first drop's, as they
				// happen: the result keeps only the first of all.
				fmt.Fprintf(stderr, "share %d: %s\n", j, r.Err)
			}
			p.connected.Add(r.Connected - old.Connected)
			p.failed.Add(r.Failed - old.Failed)
			if r.Held && !old.Held {
				held <- j
			}
		}
		sc := c
		sc.ipBase = c.ipBase + j*ipsPer
		sc.ips = ipsPer
		if *procs <= 1 {
			go func() {
				defer wg.Done()
				_ = connsShare(ctx, &sc, share, off, update, release)
			}()
		} else {
			cmd, err := startChild(&sc, share, off)
			if err != nil {
				close(release)
				return err
			}
			go func() {
				defer wg.Done()
				childReports(cmd, update, release)
			}()
		}
		off += share
	}
	// Wait until every share has tried all its connections.
	for range shares {
		select {
		case <-held:
		case <-ctx.Done():
			close(release)
			wg.Wait()
			return ctx.Err()
		}
	}
	connected := p.connected.Load()
	var connectS float64
	mu.Lock()
	for _, r := range reports {
		connectS = max(connectS, r.ConnectS)
	}
	mu.Unlock()
	fmt.Fprintf(stderr, "all shares connected: %d in %.1fs; settling %s\n", connected, connectS, *settle)
	sleepCtx(ctx, *settle)
	rss1, rss1OK := c.serverRSS()
	hold := c.duration - *settle
	sleepCtx(ctx, hold)
	rss2, _ := c.serverRSS()
	var dropped int64
	mu.Lock()
	for _, r := range reports {
		dropped += r.Dropped
	}
	mu.Unlock()
	close(release)
	wg.Wait()
	pstop()

	res.set("connected", connected)
	res.set("failed", p.failed.Load())
	res.set("dropped_while_held", dropped)
	res.set("connect_s", connectS)
	if connectS > 0 {
		res.set("connects_per_s", float64(connected)/connectS)
	}
	if rssOK && rss1OK && connected > 0 {
		res.set("server_rss_before_mib", float64(rss0)/(1<<20))
		res.set("server_rss_settled_mib", float64(rss1)/(1<<20))
		res.set("server_rss_end_mib", float64(rss2)/(1<<20))
		res.set("server_kib_per_conn", float64(rss1-rss0)/1024/float64(connected))
	}
	res.set("load_avg_end", loadAvg())
	if firstErr != nil {
		res.set("first_error", firstErr.Error())
	}
	return res.print(stdout, c.jsonOut)
}

func splitShares(n, parts int) []int {
	s := make([]int, parts)
	for i := range s {
		s[i] = n / parts
		if i < n%parts {
			s[i]++
		}
	}
	return s
}

// connsShare opens n connections for users offset…offset+n-1, reports, and
// holds them until release.
func connsShare(ctx context.Context, c *common, n, offset int, report func(shareReport), release <-chan struct{}) error {
	c.setupClients(n)
	users := make([]string, n)
	for i := range users {
		users[i] = c.user("c", offset+i)
	}
	p := &progress{}
	start := time.Now()
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				report(shareReport{Connected: p.connected.Load(), Failed: p.failed.Load()})
			}
		}
	}()
	conns, failed, err := c.dialAll(ctx, users, p, nil)
	close(stop)
	r := shareReport{Connected: int64(n) - failed, Failed: failed, Held: true, ConnectS: time.Since(start).Seconds()}
	if err != nil {
		r.Err = err.Error()
	}
	report(r)
	var dropped atomic.Int64
	var dropErr atomic.Pointer[string]
	for _, cl := range conns {
		if cl != nil {
			go func() {
				select {
				case <-cl.Done():
					dropped.Add(1)
					e := fmt.Sprintf("connection ended while held: %v", cl.Err())
					dropErr.CompareAndSwap(nil, &e)
				case <-release:
				}
			}()
		}
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	dropSeen := false
	for done := false; !done; {
		select {
		case <-release:
			done = true
		case <-ctx.Done():
			done = true
		case <-t.C:
			r.Dropped = dropped.Load()
			if e := dropErr.Load(); e != nil && !dropSeen {
				// After a dial error, if any: both are reported.
				dropSeen = true
				if r.Err != "" {
					r.Err += "; "
				}
				r.Err += *e
			}
			report(r)
		}
	}
	r.Dropped = dropped.Load()
	report(r)
	closeAll(conns)
	return nil
}

func connsChild(ctx context.Context, c *common, n, offset int, stdout io.Writer) error {
	enc := json.NewEncoder(stdout)
	var mu sync.Mutex
	report := func(r shareReport) {
		mu.Lock()
		_ = enc.Encode(r)
		mu.Unlock()
	}
	release := make(chan struct{})
	go func() {
		// The parent closes our stdin to release the connections.
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(release)
	}()
	return connsShare(ctx, c, n, offset, report, release)
}

// childProc is a running child with the pipe that releases it.
type childProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   io.Reader
}

func startChild(c *common, n, offset int) (*childProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"conns", "--child",
		"--n", strconv.Itoa(n), "--offset", strconv.Itoa(offset),
		"--url", strings.Join(c.urls, ","), "--prefix", c.prefix,
		"--ip-base", strconv.Itoa(c.ipBase), "--ips", strconv.Itoa(c.ips),
		"--dialers", strconv.Itoa(c.dialers), "--keepalive", c.keepAlive.String(),
		fmt.Sprintf("--compression=%t", c.compression),
	}
	cmd := exec.Command(exe, args...)
	// The secret goes through the environment, not the command line.
	cmd.Env = append(os.Environ(), "NATTER_JWT_SECRET="+c.secret)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &childProc{cmd: cmd, stdin: stdin, out: out}, nil
}

// childReports relays a child's reports until it exits; release closes its stdin.
func childReports(ch *childProc, update func(shareReport), release <-chan struct{}) {
	go func() {
		<-release
		_ = ch.stdin.Close()
	}()
	var last shareReport
	sc := bufio.NewScanner(ch.out)
	for sc.Scan() {
		var r shareReport
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			update(r)
			last = r
		}
	}
	if err := ch.cmd.Wait(); err != nil {
		last.Held, last.Err = true, "child: "+err.Error()
		update(last)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
