package app

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/metrics"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/services"
	"github.com/natter-chat/natter/services/chatapi"
)

// startChatAPI serves the chat service API (package chatapi) with the
// gateway's NATS user: it posts and changes conversations by the rules the
// gateway applies to users, and reads the service registry to know which
// senders each service may act as.
func (a *App) startChatAPI(ctx context.Context, _ *http.ServeMux) (*part, error) {
	nc, js, err := a.connect(ctx, schema.RoleGateway, "natter-chatapi")
	if err != nil {
		return nil, err
	}
	convs, pages, err := a.readers(ctx, nc, js)
	if err != nil {
		return nil, err
	}
	// The index watches until the part closes, not until the start's
	// ctx ends.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	idx, err := services.Watch(watchCtx, js, services.WatchConfig{Logger: a.log})
	if err != nil {
		stopWatch()
		return nil, err
	}
	api, err := chatapi.Start(nc, js, convs, pages, idx, chatapi.Config{Logger: a.log, ErrNotFound: history.ErrNotFound})
	if err != nil {
		stopWatch()
		return nil, err
	}
	a.obs.reg.MustRegister(metrics.NewChatAPIRefused(api.Stats().Refused.Load))
	return &part{name: "chatapi", close: func() error {
		stopWatch()
		return api.Stop()
	}}, nil
}

// syncServiceUsers keeps srv's service users (natsrv.SetServiceUsers)
// equal to the registry: every NATS node watches the SERVICES bucket, so
// `natter service add|rm|rotate` on any node reaches every node of the
// cluster through JetStream, with no restart. It watches (re-watching
// after a failure, such as a bucket not made yet) until ctx ends.
func syncServiceUsers(ctx context.Context, srv *natsrv.Server, js jetstream.JetStream, log *slog.Logger) error {
	install := func(all []services.Service) {
		users := make([]natsrv.ServiceUser, 0, len(all))
		for _, s := range all {
			if !strings.HasPrefix(s.PasswordHash, "$2") {
				log.Warn("Service without a password hash skipped.", "service", s.Name)
				continue
			}
			users = append(users, natsrv.ServiceUser{Name: s.Name, PasswordHash: s.PasswordHash})
		}
		if err := srv.SetServiceUsers(users); err != nil {
			log.Error("Installing the service users failed.", "err", err)
		}
	}
	for ctx.Err() == nil {
		idx, err := services.Watch(ctx, js, services.WatchConfig{Logger: log, OnChange: install})
		if err == nil {
			<-idx.Done()
		} else if ctx.Err() == nil {
			log.Warn("Watching the service registry failed; retrying.", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	return nil
}
