package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/services"
)

// Every node of a cluster learns a service added, rotated or removed on
// any of them: each natter nats node watches the replicated registry and
// installs the users itself.
func TestServiceUsersReachEveryNode(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var done []chan struct{}
	for _, s := range c.Servers {
		n, err := NewNode(s, NodeConfig{Logger: log, NewReplicas: 3})
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan struct{})
		done = append(done, ch)
		go func() { defer close(ch); _ = n.Run(ctx) }()
	}
	defer func() {
		cancel()
		for _, ch := range done {
			<-ch
		}
	}()
	nc, err := c.Servers[0].Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var reg *services.Registry
	// Three nodes ensure every stream and bucket at three replicas while
	// the cluster forms: on a loaded machine (CI, with other packages'
	// tests beside it) that took over 30 s.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if reg, err = services.Open(t.Context(), js, nil); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no registry: %v", err)
		}
	}
	put := func() string {
		pw, _ := natsrv.NewPassword()
		h, _ := services.HashPassword(pw)
		if err := reg.Put(t.Context(), &services.Service{Name: "alerts", Senders: []string{"alert-bot"}, PasswordHash: h}); err != nil {
			t.Fatal(err)
		}
		return pw
	}
	// every waits until connecting as alerts with pw on every node gives
	// ok, within wait: the first time a node may still be ensuring the
	// schema (it syncs service users only after that; on a loaded machine
	// a node's attempts kept it busy past a minute), later a change
	// travels through the bucket's watch.
	every := func(pw string, ok bool, wait time.Duration) {
		t.Helper()
		for i, s := range c.Servers {
			u := natsrv.ServiceURLs([]string{strings.TrimPrefix(s.ClientURL(), "nats://")}, "alerts", pw, false)
			for deadline := time.Now().Add(wait); ; time.Sleep(50 * time.Millisecond) {
				nc, err := nats.Connect(u, nats.NoReconnect())
				if err == nil {
					nc.Close()
				}
				if (err == nil) == ok && (ok || errors.Is(err, nats.ErrAuthorization)) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("node %d: connecting gave %v, want ok=%v", i+1, err, ok)
				}
			}
		}
	}
	pw1 := put()
	every(pw1, true, 3*time.Minute)
	pw2 := put() // rotate
	every(pw1, false, 30*time.Second)
	every(pw2, true, 30*time.Second)
	if err := reg.Delete(t.Context(), "alerts"); err != nil {
		t.Fatal(err)
	}
	every(pw2, false, 30*time.Second)
}
