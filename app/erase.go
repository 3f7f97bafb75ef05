package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/attachments"
	"github.com/natter-chat/natter/attachments/fsstore"
	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/gateway"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/search"
	"github.com/natter-chat/natter/services/erase"
)

// eraseRunTimeout bounds one chat.api.erase.run request (natter user
// erase); a run cut short finishes on the next.
const eraseRunTimeout = 10 * time.Minute

// startEraser serves the erase API (services/erase) next to the history
// store, on a connection of the eraser role's user: the embedded NATS's,
// or Config.EraserNATSURL on an external one. Without that URL it
// returns nil: this process erases nothing.
func (a *App) startEraser(ctx context.Context) (*erase.Service, error) {
	eraser, ok := a.store.(history.Eraser)
	if m, metered := a.store.(*storeMeter); metered {
		_, ok = m.Store.(history.Eraser)
	}
	if !ok {
		a.log.Warn("the history store cannot erase rows: no erase service here")
		return nil, nil
	}
	if a.nats == nil && a.cfg.EraserNATSURL == "" {
		a.log.Info("no eraser NATS URL (--eraser-nats-url): this process serves no erase API")
		return nil, nil
	}
	nc, js, err := a.connectURL(ctx, schema.RoleEraser, "natter-eraser", a.cfg.EraserNATSURL)
	if err != nil {
		return nil, err
	}
	convs, err := a.conversations(ctx, js)
	if err != nil {
		return nil, err
	}
	stream, err := history.NewStream(ctx, js)
	if err != nil {
		return nil, err
	}
	pages, err := history.NewReader(ctx, js, a.store, stream)
	if err != nil {
		return nil, err
	}
	files, err := a.eraserAttachments(ctx, js)
	if err != nil {
		return nil, err
	}
	cfg := erase.Config{JS: js, Convs: convs, Pages: pages, Store: eraser, Logger: a.log}
	if files != nil {
		cfg.Attachments, cfg.Exports = files, files
	}
	e, err := erase.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	svc, err := erase.StartAPI(nc, e, eraseRunTimeout)
	if err != nil {
		return nil, err
	}
	// Retention (services/erase/retain.go) runs where erasing does: next
	// to the store, with the one role that may delete from CHAT.
	if dropper, ok := a.store.(history.Dropper); ok {
		svc.StartRetention(erase.RetainConfig{Store: dropper, Search: search.NewRemote(nc, 30*time.Second), Every: a.cfg.RetentionSweep, Now: a.cfg.RetentionNow})
	}
	return svc, nil
}

// Drop drops rows of the store under it (history.Dropper), timed like
// the other operations.
func (m *storeMeter) Drop(ctx context.Context, conv string, seqs []uint64) error {
	dr, ok := m.Store.(history.Dropper)
	if !ok {
		return errors.New("the history store cannot drop rows")
	}
	start := time.Now()
	err := dr.Drop(ctx, conv, seqs)
	m.done(ctx, "drop", start, err)
	return err
}

// eraserAttachments is an attachments service over this process's
// attachment store (the one the gateway serves), for deleting; nil when
// attachments are off.
func (a *App) eraserAttachments(ctx context.Context, js jetstream.JetStream) (*attachments.Service, error) {
	cfg := a.cfg.Attachments
	if !cfg.enabled() {
		return nil, nil
	}
	store := cfg.Store
	if store == nil {
		fs, err := fsstore.New(fsstore.Config{Dir: cfg.Dir, BaseURL: cfg.PublicURL, Now: cfg.Service.Now})
		if err != nil {
			return nil, err
		}
		store = fs
	}
	kv, err := js.KeyValue(ctx, schema.BucketAttachments)
	if err != nil {
		return nil, err
	}
	svcCfg := cfg.Service
	if svcCfg.Logger == nil {
		svcCfg.Logger = a.log
	}
	return attachments.New(svcCfg, store, kv), nil
}

// gatewayAccounts is the conversation store (erasure records) and the
// erase API as the gateway's Accounts.
type gatewayAccounts struct {
	convs *conversation.Store
	nc    *nats.Conn
}

var _ gateway.Accounts = gatewayAccounts{}

func (g gatewayAccounts) Erased(ctx context.Context, uid string) (bool, error) {
	return g.convs.Erased(ctx, uid)
}

func (g gatewayAccounts) Delete(ctx context.Context, uid string) error {
	_, err := erase.Request(ctx, g.nc, schema.EraseEndpointStart, uid)
	return err
}

// Erase erases rows of the store under it when that store can
// (history.Eraser), timed like the other operations.
func (m *storeMeter) Erase(ctx context.Context, conv string, seqs, unquote []uint64) error {
	er, ok := m.Store.(history.Eraser)
	if !ok {
		return errNoErase
	}
	start := time.Now()
	err := er.Erase(ctx, conv, seqs, unquote)
	m.done(ctx, "erase", start, err)
	return err
}

// errNoErase: the history store cannot erase rows.
var errNoErase = errors.New("the history store cannot erase rows")

func (g gatewayAccounts) Export(ctx context.Context, uid string) (*protocol.ExportReady, error) {
	res, err := erase.RequestExport(ctx, g.nc, uid)
	switch {
	case errors.Is(err, erase.ErrExportTooLarge):
		return nil, fmt.Errorf("%w: your archive is over the server's bound; ask the operator (natter user export)", gateway.ErrTooLarge)
	case errors.Is(err, erase.ErrNoExports):
		return nil, fmt.Errorf("%w: %w", gateway.ErrExportsOff, err)
	case err != nil:
		return nil, err
	}
	return &protocol.ExportReady{File: res.File, Conversations: res.Counts.Conversations, Messages: res.Counts.Messages, Files: res.Counts.Files}, nil
}
