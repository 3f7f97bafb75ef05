package app

import (
	"context"
	"net/http"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/presence"
)

// startPresence runs the presence service, one per cluster, on a NATS
// connection of its own.
func (a *App) startPresence(ctx context.Context, _ *http.ServeMux) (*part, error) {
	nc, js, err := a.connect(ctx, schema.RolePresence, "natter-presence")
	if err != nil {
		return nil, err
	}
	convs, err := a.conversations(ctx, js)
	if err != nil {
		return nil, err
	}
	pcfg := a.cfg.Presence
	if pcfg.Logger == nil {
		pcfg.Logger = a.log
	}
	svc, err := presence.NewService(ctx, pcfg, nc, js, convs)
	if err != nil {
		return nil, err
	}
	return &part{name: "presence service", run: svc.Run}, nil
}
