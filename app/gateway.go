package app

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/natter-chat/natter/attachments"
	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/fanout"
	"github.com/natter-chat/natter/gateway"
	"github.com/natter-chat/natter/inbox"
	"github.com/natter-chat/natter/metrics"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/presence"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/search"
)

// startGateway builds the WebSocket gateway on a NATS connection of its
// own and serves it at /v1/ws. The gateway runs on the HTTP server, so its
// part has nothing to run: Shutdown closes the gateway's WebSockets before
// the HTTP server, and the part's close stops the token verifier's JWKS
// reloader.
func (a *App) startGateway(ctx context.Context, mux *http.ServeMux) (*part, error) {
	verifier, err := auth.New(a.cfg.Auth)
	if err != nil {
		return nil, err
	}
	gw, tracker, files, err := a.newGateway(ctx, verifier, mux)
	if err != nil {
		_ = verifier.Close()
		return nil, err
	}
	a.gateway = gw
	a.obs.reg.MustRegister(metrics.NewGatewayConnections(a.gateway.Connections))
	mux.Handle("GET /v1/ws", a.gateway)
	// Shutdown closes the gateway's WebSockets before any part closes, so
	// the presence lease goes only once every connection is gone.
	p := &part{name: "gateway", close: func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return errors.Join(tracker.Close(ctx), verifier.Close())
	}}
	if files != nil {
		// Every gateway sweeps abandoned uploads: deleting is idempotent.
		p.run = files.Run
	}
	return p, nil
}

// newGateway builds the gateway's dependencies (the adapters in
// gatewaydeps.go over the conversation store, the message readers, the
// presence tracker and the push device store) and the gateway. The
// caller closes the tracker after the gateway has shut down.
func (a *App) newGateway(ctx context.Context, verifier *auth.Verifier, mux *http.ServeMux) (_ *gateway.Server, _ *presence.Tracker, _ *attachments.Service, err error) {
	cfg := a.cfg
	gwNC, gwJS, err := a.connect(ctx, schema.RoleGateway, "natter-gateway")
	if err != nil {
		return nil, nil, nil, err
	}
	convs, msgs, err := a.readers(ctx, gwNC, gwJS)
	if err != nil {
		return nil, nil, nil, err
	}
	gwCfg := cfg.Gateway
	if gwCfg.Logger == nil {
		gwCfg.Logger = cfg.Logger
	}
	heartbeat := gwCfg.Heartbeat
	if heartbeat <= 0 {
		heartbeat = protocol.DefaultHeartbeatSecs * time.Second
	}
	gatewayID := cfg.GatewayID
	if gatewayID == "" {
		gatewayID = randomID("gw")
	}
	tracker, err := presence.NewTracker(ctx, presence.TrackerConfig{Gateway: gatewayID, LeaseTTL: 2 * heartbeat, Logger: cfg.Logger}, gwJS)
	if err != nil {
		return nil, nil, nil, err
	}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = tracker.Close(cctx)
		}
	}()
	presenceKV, err := gwJS.KeyValue(ctx, schema.BucketPresence)
	if err != nil {
		return nil, nil, nil, err
	}
	pushKV, err := gwJS.KeyValue(ctx, schema.BucketPush)
	if err != nil {
		return nil, nil, nil, err
	}
	files, err := a.openAttachments(ctx, gwJS, mux)
	if err != nil {
		return nil, nil, nil, err
	}
	var gwFiles gateway.Attachments
	if files != nil {
		gwFiles = gatewayAttachments{files}
	}
	convKV, err := gwJS.KeyValue(ctx, schema.BucketConversations)
	if err != nil {
		return nil, nil, nil, err
	}
	gw, err := gateway.New(gwCfg, gateway.Deps{
		Verifier: verifier, NC: gwNC, JS: gwJS,
		Conversations: gatewayConversations{convs}, ReadMarkers: gatewayConversations{convs},
		Messages: gatewayMessages{msgs},
		Presence: gatewayPresence{Tracker: tracker, kv: presenceKV},
		Devices: gatewayDevices{
			s:         pushnotify.NewStore(pushnotify.StoreConfig{Now: gwCfg.Now, NC: gwNC}, pushKV),
			endpoints: cfg.Push.WebPushEndpoints,
		},
		Consent:     gatewayConsent{convs},
		MemberViews: gatewayConsent{convs},
		Blocks:      gatewayBlocks{convs},
		Groups:      gatewayGroups{convs},
		Metrics:     a.gatewayMetrics(),
		Tracer:      tracer(a.tp, "gateway"),
		Inbox:       gatewayInbox{inbox.New(convKV, gwNC)},
		Attachments: gwFiles,
		Searcher:    gatewaySearch{search.NewRemote(gwNC, 10*time.Second)},
		Accounts:    gatewayAccounts{convs: convs, nc: gwNC},
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return gw, tracker, files, nil
}

// startFanout runs a fan-out worker next to every gateway, on a NATS
// connection of its own so deliveries never queue behind requests. The
// workers of all gateways share one pinned consumer: one delivers at a
// time, the others stand by.
func (a *App) startFanout(ctx context.Context, _ *http.ServeMux) (*part, error) {
	nc, js, err := a.connect(ctx, schema.RoleGateway, "natter-fanout")
	if err != nil {
		return nil, err
	}
	convs, msgs, err := a.readers(ctx, nc, js)
	if err != nil {
		return nil, err
	}
	cfg := a.cfg.Fanout
	if cfg.Logger == nil {
		cfg.Logger = a.log
	}
	if cfg.Delay == nil {
		cfg.Delay = metrics.NewFanoutDelay(a.obs.reg)
	}
	if cfg.Tracer == nil {
		cfg.Tracer = tracer(a.tp, "fanout")
	}
	if cfg.Inbox == nil {
		kv, err := js.KeyValue(ctx, schema.BucketConversations)
		if err != nil {
			return nil, err
		}
		cfg.Inbox = inbox.New(kv, nc)
	}
	return &part{name: "fan-out", run: fanout.New(cfg, nc, js, convs, msgs).Run}, nil
}

// randomID returns prefix followed by 13 random base32 characters: a NATS
// subject token.
func randomID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
