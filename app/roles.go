package app

import (
	"context"
	"net/http"
)

// Roles says which parts an App runs.
type Roles struct {
	// Gateway serves WebSocket clients and runs a fan-out worker (the
	// workers of all gateways share one pinned consumer).
	Gateway bool
	// Presence runs the presence service: one per cluster.
	Presence bool
	// History copies the CHAT stream into the history store and serves
	// the history API (chat.api.history.*).
	History bool
	// Push runs the push notification dispatcher (one per cluster is
	// enough; more share its consumer); it starts only when a provider is
	// configured.
	Push bool
	// Events writes the events for services (bots) and delivers those of
	// services with a webhook (one per cluster is enough; more share the
	// writer's pinned consumer).
	Events bool
	// Indexer keeps the search index and serves the search API
	// (chat.api.search); it starts only when Config.Search names an
	// index. With the embedded index, one per cluster.
	Indexer bool
}

// AllRoles is what natter serve runs.
var AllRoles = Roles{Gateway: true, Presence: true, History: true, Push: true, Events: true, Indexer: true}

// role is one row of the table: whether it runs here and how it starts.
type role struct {
	name string
	on   bool
	// start opens what the role needs (its NATS connections through
	// connect) and returns the part that runs it; mux is for a role that
	// serves HTTP. A nil part means there is nothing to run.
	start func(ctx context.Context, mux *http.ServeMux) (*part, error)
}

// roles is the table of what runs in this process, in start order: the
// gateway before its fan-out worker, so the worker starts delivering once
// the gateway is built.
func (a *App) roles() []role {
	r := a.cfg.Roles
	return []role{
		{"gateway", r.Gateway, a.startGateway},
		{"fanout", r.Gateway, a.startFanout},
		{"chatapi", r.Gateway, a.startChatAPI},
		{"presence", r.Presence, a.startPresence},
		{"history", r.History, a.startHistory},
		{"pushnotify", r.Push, a.startPush},
		{"events", r.Events, a.startEvents},
		{"indexer", r.Indexer, a.startIndexer},
		{"pprof", a.cfg.Pprof != "", a.startPprof},
	}
}

// part is a started role. run, when set, works until its context ends
// (Shutdown ends it); close, when set, is called once every part's run
// has returned and releases what the role opened, besides the NATS
// connections the App drains itself.
type part struct {
	name  string
	run   func(ctx context.Context) error
	close func() error
}

// runPart keeps p running in the background until Shutdown.
func (a *App) runPart(ctx context.Context, p *part) {
	if p == nil {
		return
	}
	a.parts = append(a.parts, p)
	if p.run == nil {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := p.run(ctx); err != nil {
			a.log.Error(p.name+" stopped", "err", err)
		}
		a.log.Debug("part stopped", "part", p.name)
	}()
}
