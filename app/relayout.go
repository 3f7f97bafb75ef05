package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
)

// Re-partitioning (schema.Repartition) makes new message streams. Every
// process that read the layout at start (the gateway's streams and
// membership lookups, the fan-out's, history's, pushnotify's, the events
// writer's and the indexer's consumers, the eraser) would go on with
// streams that no longer exist. So each process follows the recorded
// layout (schema.LayoutStamp, polled): a NATS server it runs takes the new
// subject mapping at once (adopts), and a process running roles refuses
// to go on: it stops (App.Relayout is closed, `natter serve` exits with an
// error) and, restarted by its supervisor, reads the new layout.

// layoutPoll is how often a process reads the layout's stamp: one stream
// info request.
var layoutPoll = time.Second

// retiredSweep is how often a process running a NATS server looks for
// retired message streams to delete (schema.DeleteRetired).
const retiredSweep = time.Minute

// ErrRelayout says the message streams were re-partitioned after this
// process read their layout: it stopped, a restart adopts the new one.
var ErrRelayout = errors.New("the message streams were re-partitioned since this process started; restart it to adopt the new layout")

// followLayout polls the layout's stamp until ctx ends. On a change it
// gives srv (when not nil) the new mapping and calls changed (when not
// nil), which returns whether to keep following.
func followLayout(ctx context.Context, js jetstream.JetStream, srv *natsrv.Server, log *slog.Logger, changed func(from, to string) bool) error {
	stamp, _, err := schema.LayoutStamp(ctx, js)
	for err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || isPermission(err) {
			log.Warn("cannot follow the message streams' layout", "err", err)
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(layoutPoll):
		}
		stamp, _, err = schema.LayoutStamp(ctx, js)
	}
	nextSweep := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(layoutPoll):
		}
		if srv != nil && time.Now().After(nextSweep) {
			// The operator's process deletes what a re-partition
			// retired once its de-dup window has passed.
			nextSweep = time.Now().Add(retiredSweep)
			if gone, err := schema.DeleteRetired(ctx, js, time.Now()); err != nil {
				log.Warn("deleting retired message streams", "err", err)
			} else if len(gone) > 0 {
				log.Info("deleted retired message streams", "streams", gone)
			}
		}
		now, l, err := schema.LayoutStamp(ctx, js)
		if err != nil || now == stamp {
			// Mid-move (between a stream's deletion and the next read)
			// or unreachable: the next poll tells.
			continue
		}
		log.Warn("the message streams were re-partitioned", "from", stamp, "to", now)
		if srv != nil {
			if err := srv.SetStreams(l.Streams); err != nil {
				log.Error("apply the new subject mapping", "err", err)
				continue
			}
		}
		stamp = now
		if changed != nil && !changed(stamp, now) {
			return nil
		}
	}
}

func isPermission(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == 403
}

// followsLayout reports whether the App reads the message streams'
// layout: it runs a NATS server or a role that uses the streams.
func (a *App) followsLayout() bool {
	r := a.cfg.Roles
	return a.nats != nil || r.Gateway || r.History || r.Push || r.Events || r.Indexer
}

// startLayoutFollow runs followLayout as a part; on a change an App
// running roles stops (Relayout).
func (a *App) startLayoutFollow(ctx context.Context) (*part, error) {
	if !a.followsLayout() {
		return nil, nil
	}
	role := ""
	if a.nats == nil {
		role = a.layoutRole()
	}
	_, js, err := a.connect(ctx, role, "natter-layout")
	if err != nil {
		return nil, err
	}
	roles := a.cfg.Roles
	stops := roles.Gateway || roles.History || roles.Push || roles.Events || roles.Indexer
	return &part{name: "layout", run: func(ctx context.Context) error {
		return followLayout(ctx, js, a.nats, a.log, func(from, to string) bool {
			if !stops {
				return true
			}
			a.log.Error("stopping: "+ErrRelayout.Error(), "from", from, "to", to)
			a.relayoutOnce.Do(func() { close(a.relayout) })
			go func() {
				sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_ = a.Shutdown(sctx)
			}()
			return false
		})
	}}, nil
}

// layoutRole is the NATS user the layout is read as: any role of the App
// that may read the message streams' info.
func (a *App) layoutRole() string {
	r := a.cfg.Roles
	switch {
	case r.Gateway:
		return schema.RoleGateway
	case r.History:
		return schema.RoleHistory
	case r.Push && a.cfg.Push.Configured():
		return schema.RolePush
	case r.Events:
		return schema.RoleEvents
	case r.Indexer:
		return schema.RoleIndexer
	}
	return ""
}

// Relayout is closed when the App stopped itself because the message
// streams were re-partitioned (ErrRelayout): restart it.
func (a *App) Relayout() <-chan struct{} { return a.relayout }

// FollowStreams keeps srv's subject mapping (natsrv.Server.SetStreams)
// on the message streams' recorded layout, read over js, until ctx ends:
// what every natter nats node runs, so a re-partition switches its
// mapping within a second.
func FollowStreams(ctx context.Context, srv *natsrv.Server, js jetstream.JetStream, log *slog.Logger) {
	if err := followLayout(ctx, js, srv, log, nil); err != nil {
		log.Error("following the message streams' layout stopped", "err", fmt.Errorf("%w", err))
	}
}
