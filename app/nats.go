package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
)

// startNATS starts the embedded server unless an external NATS is named.
// With the embedded server this process is the operator: it ensures the
// schema with its own settings. Against an external NATS it is a role: it
// checks that what its roles use exists, creating nothing, and waits for
// the operator's processes to make what is missing.
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
		if emb.ClusterName != "" {
			if err := awaitMetaLeader(ctx, a.nats); err != nil {
				return err
			}
		}
	}
	_, js, err := a.connect(ctx, "", "natter-schema")
	if err != nil {
		return err
	}
	if a.nats == nil {
		return awaitSchema(ctx, js, a.natsRoles(), a.cfg.SchemaWait, a.log)
	}
	for {
		err := ensureSchema(ctx, js, a.cfg.Schema, 0, a.log)
		if err == nil {
			break
		}
		// A node that just joined its cluster may see the meta leader
		// before the leader has heard from every peer: R3 placement is
		// refused for a moment, and then succeeds.
		if a.cfg.Embedded.ClusterName == "" || !noPeersYet(err) {
			return err
		}
		a.log.Warn("schema not ensured yet: the cluster's peers are still joining; retrying", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
	return applyStreams(ctx, a.nats, js)
}

// jsClusterNoPeers is JetStream's error code for "no suitable peers for
// placement" (nats-server's JSClusterNoPeersErr).
const jsClusterNoPeers = 10005

func noPeersYet(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == jsClusterNoPeers
}

// awaitMetaLeader waits until a clustered embedded server is current with
// a JetStream meta leader. Until then the cluster may drop JetStream API
// requests unanswered, and the schema step's first request would wait for
// all of ctx (Start's) although a leader is elected seconds later.
func awaitMetaLeader(ctx context.Context, srv *natsrv.Server) error {
	for !srv.Server().JetStreamIsCurrent() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("embedded NATS: no JetStream meta leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// applyStreams gives srv the subject mapping of the message streams the
// schema records (schema.Layout): a server started without
// natsrv.Config.Streams, or with another N, partitions publishes as the
// streams are.
func applyStreams(ctx context.Context, srv *natsrv.Server, js jetstream.JetStream) error {
	l, err := schema.ReadLayout(ctx, js)
	if err != nil {
		return err
	}
	return srv.SetStreams(l.Streams)
}

// defaultDialTimeout is nats.go's own default, kept when ctx allows more.
const defaultDialTimeout = 2 * time.Second

// natsRoles lists the role users (schema.Roles) of the roles this App
// runs: what its connections may do, and what the schema check looks up.
func (a *App) natsRoles() []string {
	r := a.cfg.Roles
	var roles []string
	for _, x := range []struct {
		on   bool
		role string
	}{{r.Gateway, schema.RoleGateway}, {r.History, schema.RoleHistory}, {r.Presence, schema.RolePresence},
		{r.Push && a.cfg.Push.Configured(), schema.RolePush}, {r.Events, schema.RoleEvents},
		{r.Indexer && a.cfg.Search.Configured(), schema.RoleIndexer}} {
		if x.on {
			roles = append(roles, x.role)
		}
	}
	return roles
}

// connect opens a NATS connection named name (each role has its own, so
// one role's traffic never queues behind another's) and a JetStream
// context on it. The App drains it in Shutdown. ctx bounds the dial.
//
// role is the role user (schema.Roles) whose work the connection does: it
// takes that role's inbox prefix, and with the embedded server it
// connects as that user, so natter serve's roles have no more rights than
// the same roles in processes of their own. Against an external NATS the
// URL names the user. An empty role is the App's own connection (schema,
// metrics, retention): the embedded server's internal user, or against
// an external NATS the user of the App's first role.
func (a *App) connect(ctx context.Context, role, name string) (*nats.Conn, jetstream.JetStream, error) {
	return a.connectURL(ctx, role, name, a.cfg.NATSURL)
}

// connectURL is connect with the URL of an external NATS given: a role
// user other than the process's own (the eraser's, Config.EraserNATSURL).
func (a *App) connectURL(ctx context.Context, role, name, url string) (*nats.Conn, jetstream.JetStream, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("connect to NATS as %s: %w", name, err)
	}
	timeout := defaultDialTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(d)), time.Millisecond)
	}
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond), nats.Timeout(timeout),
		nats.ErrorHandler(a.natsError)}
	var nc *nats.Conn
	var err error
	if role == "" && a.nats == nil {
		if roles := a.natsRoles(); len(roles) > 0 {
			role = roles[0]
		}
	}
	if role != "" {
		opts = append(opts, nats.CustomInboxPrefix(schema.Inbox(role)))
	}
	switch {
	case a.nats != nil && role != "":
		nc, err = a.nats.ConnectRole(role, name, opts...)
	case a.nats != nil:
		nc, err = a.nats.Connect(name, opts...)
	default:
		if a.cfg.NATSRootCA != "" {
			opts = append(opts, nats.RootCAs(a.cfg.NATSRootCA))
		}
		nc, err = nats.Connect(url, append(opts, nats.Name(name))...)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS as %s: %w", name, err)
	}
	a.connsMu.Lock()
	a.conns = append(a.conns, nc)
	a.connsMu.Unlock()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, err
	}
	return nc, js, nil
}

// natsError logs what the server refused a connection: a permissions
// violation is a role run with another role's user (or a bug naming a
// subject its role may not use), which otherwise shows only as timeouts.
func (a *App) natsError(nc *nats.Conn, sub *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		a.log.Error("NATS refused a request of this role's user", "conn", nc.Opts.Name, "err", err)
		return
	}
	if errors.Is(err, nats.ErrSlowConsumer) {
		a.natsStats.SlowConsumer(nc.Opts.Name)
	}
	// Anything else (a slow consumer, mostly) only at debug level: under
	// load it would flood the log; slow consumers are counted instead.
	if sub != nil {
		a.log.Debug("NATS subscription error", "conn", nc.Opts.Name, "subject", sub.Subject, "err", err)
		return
	}
	a.log.Debug("NATS error", "conn", nc.Opts.Name, "err", err)
}

// closeConns drains every connection, so what the parts published is
// flushed, then closes them; ctx bounds the wait. With the embedded
// server the drain gets half of what is left of ctx and the server's own
// shutdown the rest: a subscription with a long backlog (a gateway behind
// on millions of pushes) would otherwise drain until ctx ends and leave
// the server no time to stop.
func (a *App) closeConns(ctx context.Context) {
	if d, ok := ctx.Deadline(); ok && a.nats != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(d)/2))
		defer cancel()
	}
	conns := a.natsConns()
	for _, nc := range conns {
		_ = nc.Drain()
	}
	for _, nc := range conns {
		for !nc.IsClosed() && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		nc.Close()
	}
}

// natsConns is a copy of the process's NATS connections.
func (a *App) natsConns() []*nats.Conn {
	a.connsMu.Lock()
	defer a.connsMu.Unlock()
	return slices.Clone(a.conns)
}
