package app

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natsrv"
)

// startNATS starts the embedded server unless an external NATS is named.
// With the embedded server this process is the operator: it ensures the
// schema with its own settings. Against an external NATS it is a role: it
// creates only what is missing, or waits for the operator's processes.
func (a *App) startNATS(ctx context.Context) error {
	if a.cfg.NATSURL == "" {
		emb := a.cfg.Embedded
		if emb.Logger == nil {
			emb.Logger = a.log
		}
		var err error
		if a.nats, err = natsrv.Start(ctx, emb); err != nil {
			return fmt.Errorf("start embedded NATS: %w", err)
		}
	}
	_, js, err := a.connect(ctx, "natter-schema")
	if err != nil {
		return err
	}
	if a.nats == nil {
		return awaitSchema(ctx, js, a.cfg.Schema, a.log)
	}
	return ensureSchema(ctx, js, a.cfg.Schema, 0, a.log)
}

// defaultDialTimeout is nats.go's own default, kept when ctx allows more.
const defaultDialTimeout = 2 * time.Second

// connect opens a NATS connection named name (each role has its own, so
// one role's traffic never queues behind another's) and a JetStream
// context on it. The App drains it in Shutdown. ctx bounds the dial.
func (a *App) connect(ctx context.Context, name string) (*nats.Conn, jetstream.JetStream, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("connect to NATS as %s: %w", name, err)
	}
	timeout := defaultDialTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(d)), time.Millisecond)
	}
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond), nats.Timeout(timeout)}
	var nc *nats.Conn
	var err error
	if a.nats != nil {
		nc, err = a.nats.Connect(name, opts...)
	} else {
		if a.cfg.NATSRootCA != "" {
			opts = append(opts, nats.RootCAs(a.cfg.NATSRootCA))
		}
		nc, err = nats.Connect(a.cfg.NATSURL, append(opts, nats.Name(name))...)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS as %s: %w", name, err)
	}
	a.conns = append(a.conns, nc)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, err
	}
	return nc, js, nil
}

// closeConns drains every connection, so what the parts published is
// flushed, then closes them; ctx bounds the wait.
func (a *App) closeConns(ctx context.Context) {
	for _, nc := range a.conns {
		_ = nc.Drain()
	}
	for _, nc := range a.conns {
		for !nc.IsClosed() && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		nc.Close()
	}
}
