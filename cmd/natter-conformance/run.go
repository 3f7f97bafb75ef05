package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/nats/natsrv"
)

// users get a token each in the command's environment.
var users = []string{"alice", "bob", "carol"}

func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	upstream := fs.String("upstream", "", "ws:// URL of a running natter (default: start one in-process)")
	secret := fs.String("jwt-secret", "", "HS256 secret of --upstream, to sign the users' tokens")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("run: no command given (natter-conformance run -- command args)")
	}
	t, err := startTarget(ctx, *upstream, *secret)
	if err != nil {
		return err
	}
	defer t.close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = append(os.Environ(), t.env()...)
	cmdErr := cmd.Run()
	ok := t.report.print(stdout)
	if cmdErr != nil {
		return fmt.Errorf("the command failed: %w", cmdErr)
	}
	if !ok {
		return errNonConformant
	}
	return nil
}

// target is the natter under test behind a recording proxy.
type target struct {
	report *report
	url    string // the proxy's ws:// URL
	secret string
	close  func()
}

// startTarget starts a natter (unless upstream is set) and the proxy.
func startTarget(ctx context.Context, upstream, secret string) (*target, error) {
	r, err := newReport()
	if err != nil {
		return nil, err
	}
	t := &target{report: r, secret: secret}
	var closers []func()
	t.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if upstream == "" {
		dir, err := os.MkdirTemp("", "natter-conformance-")
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { _ = os.RemoveAll(dir) })
		t.secret = "conformance-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-secret-of-32-bytes"
		a, err := app.Start(ctx, app.Config{
			HTTPAddr: "127.0.0.1:0",
			Embedded: natsrv.Config{Listen: "127.0.0.1:-1", DataDir: dir + "/nats"},
			History:  app.HistoryConfig{Dir: dir + "/history"},
			Auth:     auth.Config{Secret: t.secret},
			Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.close()
			return nil, fmt.Errorf("start natter: %w", err)
		}
		closers = append(closers, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = a.Shutdown(sctx)
		})
		upstream = a.WebSocketURL()
	} else if secret == "" {
		return nil, errors.New("run: --upstream needs --jwt-secret to sign the users' tokens")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.close()
		return nil, err
	}
	p := &proxy{upstream: upstream, report: r}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	closers = append(closers, func() { _ = srv.Close() })
	t.url = "ws://" + ln.Addr().String() + "/v1/ws"
	return t, nil
}

// token signs a token for user valid one hour.
func (t *target) token(user string) (string, error) {
	return auth.IssueHS256(t.secret, user, time.Hour, time.Now())
}

func (t *target) env() []string {
	out := []string{"NATTER_WS_URL=" + t.url}
	for _, u := range users {
		tok, err := t.token(u)
		if err != nil {
			continue
		}
		out = append(out, "NATTER_TOKEN_"+strings.ToUpper(u)+"="+tok)
	}
	return out
}

// proxy relays WebSocket connections to upstream and hands every frame,
// in wire order, to the report.
type proxy struct {
	upstream string
	report   *report
	n        atomic.Int64
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := http.Header{}
	if a := r.Header.Get("Authorization"); a != "" {
		hdr.Set("Authorization", a)
	}
	up, resp, err := websocket.Dial(r.Context(), p.upstream, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		status := http.StatusBadGateway
		if resp != nil {
			status = resp.StatusCode
		}
		http.Error(w, "upstream: "+err.Error(), status)
		return
	}
	down, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		up.CloseNow()
		return
	}
	up.SetReadLimit(-1)
	down.SetReadLimit(-1)
	conn := "conn" + strconv.FormatInt(p.n.Add(1), 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{}, 2)
	go p.relay(ctx, conn, down, up, true, done)
	go p.relay(ctx, conn, up, down, false, done)
	<-done
	cancel()
	<-done
}

// relay copies frames from one side to the other; a close is passed on
// with its code and reason.
func (p *proxy) relay(ctx context.Context, conn string, from, to *websocket.Conn, sent bool, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	for {
		typ, data, err := from.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				_ = to.Close(ce.Code, ce.Reason)
			} else {
				to.CloseNow()
			}
			return
		}
		switch {
		case typ == websocket.MessageText:
			p.report.frame(conn, sent, data)
		case sent:
			// Answered with bad_request without an id, whatever it holds.
			p.report.frame(conn, sent, []byte("binary frame"))
		}
		if err := to.Write(ctx, typ, data); err != nil {
			from.CloseNow()
			return
		}
	}
}
