package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/history/scyllastore"
	"github.com/natter-chat/natter/nats/schema"
)

// HistoryConfig says where the history store is. The first of Store, CQL
// and Dir that is set is used; with none, this process holds no store.
type HistoryConfig struct {
	// Store is a store the caller opened (and closes): one shared by Apps
	// in a test.
	Store history.Store
	// CQL opens a ScyllaDB/Cassandra store (scyllastore) instead of the
	// embedded one; every role may read it. The App closes it.
	CQL *scyllastore.Config
	// Migrate creates or updates the CQL keyspace and tables first.
	Migrate bool
	// Dir opens the embedded store (localstore) there; the App closes it.
	Dir string
	// NoSync commits the embedded store without fsync (tests only).
	NoSync bool
}

// OpenHistory is the one place the history backend is chosen, for natter
// serve, natter history and natter history rebuild alike. closer is nil
// when the caller owns the store; store is nil when cfg names none.
func OpenHistory(ctx context.Context, cfg HistoryConfig, log *slog.Logger) (store history.Store, closer func() error, err error) {
	switch {
	case cfg.Store != nil:
		return cfg.Store, nil, nil
	case cfg.CQL != nil:
		if cfg.Migrate {
			if err := scyllastore.Migrate(ctx, *cfg.CQL); err != nil {
				return nil, nil, fmt.Errorf("migrate history schema: %w", err)
			}
		}
		s, err := scyllastore.New(ctx, *cfg.CQL)
		if err != nil {
			return nil, nil, fmt.Errorf("open history store: %w", err)
		}
		return s, s.Close, nil
	case cfg.Dir != "":
		s, err := localstore.New(localstore.Config{Dir: cfg.Dir, NoSync: cfg.NoSync, Logger: log})
		if err != nil {
			return nil, nil, fmt.Errorf("open history store: %w", err)
		}
		return s, s.Close, nil
	}
	return nil, nil, nil
}

// startHistory runs the history writer and serves the history API, on a
// NATS connection of their own. The part stops the API once the writer
// returned.
func (a *App) startHistory(ctx context.Context, _ *http.ServeMux) (*part, error) {
	nc, js, err := a.connect(ctx, schema.RoleHistory, "natter-history")
	if err != nil {
		return nil, err
	}
	pages, err := a.pages(ctx, nc, js)
	if err != nil {
		return nil, err
	}
	api, err := history.StartAPI(nc, pages, 10*time.Second)
	if err != nil {
		return nil, err
	}
	wcfg := history.WriterConfig{Logger: a.log, Tracer: tracer(a.tp, "history")}
	if h := a.cfg.History; h.Store == nil && h.CQL == nil {
		// An embedded store: one writer per cluster, or two processes
		// would each hold half of the history.
		wcfg.SingleWriter = localstore.Name(h.Dir)
	}
	w := history.NewWriter(wcfg, js, a.store)
	if err := w.Claim(ctx); err != nil {
		_ = api.Stop()
		return nil, err
	}
	eraser, err := a.startEraser(ctx)
	if err != nil {
		_ = api.Stop()
		return nil, err
	}
	return &part{name: "history writer", run: w.Run, close: func() error {
		var err error
		if eraser != nil {
			err = eraser.Stop()
		}
		return errors.Join(err, api.Stop())
	}}, nil
}

func (a *App) conversations(ctx context.Context, js jetstream.JetStream) (*conversation.Store, error) {
	ccfg := a.cfg.Conversations
	if ccfg.Logger == nil {
		ccfg.Logger = a.log
	}
	return conversation.New(ctx, ccfg, js)
}

// readers returns the conversation store and where messages are read:
// the history Reader over this process's store and the stream, or the
// history API when the store lives in another process.
func (a *App) readers(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) (*conversation.Store, history.Pages, error) {
	// The gateway's user (every caller's) may read the bucket's leader.
	ccfg := a.cfg.Conversations
	if ccfg.Logger == nil {
		ccfg.Logger = a.log
	}
	ccfg.LeaderChecks = true
	convs, err := conversation.New(ctx, ccfg, js)
	if err != nil {
		return nil, nil, err
	}
	pages, err := a.pages(ctx, nc, js)
	if err != nil {
		return nil, nil, err
	}
	return convs, pages, nil
}

// pages reads message pages: from the stream and the store when this
// process holds the store, else through the history API.
func (a *App) pages(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) (history.Pages, error) {
	if a.store == nil {
		return history.NewRemote(nc, 10*time.Second), nil
	}
	stream, err := history.NewStream(ctx, js)
	if err != nil {
		return nil, err
	}
	return history.NewReader(ctx, js, a.store, stream)
}
