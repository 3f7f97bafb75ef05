package natsrv_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
)

// roleConn is one role user's connection, with the permission violations
// the server reported to it.
type roleConn struct {
	role string
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error
}

func connectRole(t *testing.T, s *natsrv.Server, role string) *roleConn {
	t.Helper()
	rc := &roleConn{role: role, errs: make(chan error, 256)}
	nc, err := dial(s.RoleURL(role), nats.CustomInboxPrefix(schema.Inbox(role)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case rc.errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(nc.Close)
	rc.nc = nc
	if rc.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return rc
}

// violation waits for the server's permissions violation naming subject.
func (rc *roleConn) violation(t *testing.T, what, subject string) {
	t.Helper()
	deadline := time.After(3 * time.Second)
	for {
		select {
		case err := <-rc.errs:
			msg := strings.ToLower(err.Error())
			if strings.Contains(msg, "permissions violation") && strings.Contains(err.Error(), subject) {
				return
			}
		case <-deadline:
			t.Fatalf("%s: %s was not refused by the server (no permissions violation for %q)", rc.role, what, subject)
		}
	}
}

// refused sends a JetStream API request (or any publish) and requires the
// server to refuse it: no reply, and a permissions violation.
func (rc *roleConn) refused(t *testing.T, what, subject string, body any) {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		data = nil
	}
	reply, err := rc.nc.SubscribeSync(rc.nc.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reply.Unsubscribe() }()
	if err := rc.nc.PublishRequest(subject, reply.Subject, data); err != nil {
		t.Fatal(err)
	}
	rc.violation(t, what, subject)
	if msg, err := reply.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("%s: %s answered: %s", rc.role, what, msg.Data)
	}
}

// publishRefused publishes without expecting a reply.
func (rc *roleConn) publishRefused(t *testing.T, what, subject string) {
	t.Helper()
	if err := rc.nc.Publish(subject, []byte(`{"members":["mallory"]}`)); err != nil {
		t.Fatal(err)
	}
	rc.violation(t, what, subject)
}

func (rc *roleConn) subscribeRefused(t *testing.T, subject string) {
	t.Helper()
	sub, err := rc.nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	_ = rc.nc.Flush()
	rc.violation(t, "subscribing to "+subject, subject)
}

// Each role's NATS user may do its own job and nothing else: the server
// refuses reading messages (all but the gateway and history) and push
// tokens (all but the gateway and pushnotify), creating a stream that
// captures user events, shrinking CHAT's hot window, deleting, purging or
// creating streams, creating, updating or deleting any durable consumer,
// and reading the replies other roles get (issue 14). These are the
// attacks reproduced against v1.0's users.
func TestRolePermissions(t *testing.T) {
	s := start(t, t.TempDir())
	ctx := t.Context()
	op, err := dial(s.OperatorURL())
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	ojs, _ := jetstream.New(op)
	if err := schema.Ensure(ctx, ojs, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ojs.Publish(ctx, schema.Msg("c1"), []byte(`{"sender":"alice","body":{"text":"secret"}}`)); err != nil {
		t.Fatal(err)
	}
	// Seq 2: the eraser's to delete.
	if _, err := ojs.Publish(ctx, schema.Msg("c2"), []byte(`{"sender":"bob","body":{"text":"erase me"}}`)); err != nil {
		t.Fatal(err)
	}
	for bucket, key := range map[string]string{schema.BucketPush: "d.alice", schema.BucketConversations: "c.c1",
		schema.BucketPresence: "u.alice", schema.BucketPushSent: "s.1", schema.BucketLeases: "l"} {
		kv, err := ojs.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, key, []byte(`{"token":"device-token-of-alice"}`)); err != nil {
			t.Fatal(err)
		}
	}
	chat, err := ojs.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	before := chat.CachedInfo().Config
	shrunk := before
	shrunk.MaxAge = 3 * time.Second
	layout := schema.LayoutOf(before)
	consumers := append([]string{schema.ConsumerFanout, schema.ConsumerHistory, schema.ConsumerPush, schema.ConsumerServiceEvents, schema.ConsumerSearch}, layout.FanoutConsumers()...)
	// The gateway also pulls every partition's fan-out consumer.
	ownsPartitions := map[string]bool{schema.RoleGateway: true}
	own := map[string]string{schema.RoleGateway: schema.ConsumerFanout, schema.RoleHistory: schema.ConsumerHistory, schema.RolePush: schema.ConsumerPush,
		schema.RoleEvents: schema.ConsumerServiceEvents, schema.RoleIndexer: schema.ConsumerSearch}
	readsMessages := map[string]bool{schema.RoleGateway: true, schema.RoleHistory: true, schema.RoleEraser: true}
	readsTokens := map[string]bool{schema.RoleGateway: true, schema.RolePush: true}
	writesConversations := map[string]bool{schema.RoleGateway: true, schema.RoleEraser: true}
	api := func(s string) string { return "$JS.API." + s }

	t.Run("roles", func(t *testing.T) {
		for _, role := range natsrv.Roles {
			t.Run(role, func(t *testing.T) {
				t.Parallel()
				rc := connectRole(t, s, role)

				// Its own work: what it uses exists and it may look it up.
				if role != schema.RoleService {
					if err := schema.Check(ctx, rc.js, role); err != nil {
						t.Fatalf("the %s role cannot look up its own schema: %v", role, err)
					}
				}
				if c, ok := own[role]; ok {
					if _, err := rc.js.Consumer(ctx, schema.StreamChat, c); err != nil {
						t.Fatalf("consumer info of its own consumer %s: %v", c, err)
					}
				}
				if ownsPartitions[role] {
					for _, c := range layout.FanoutConsumers() {
						if _, err := rc.js.Consumer(ctx, schema.StreamChat, c); err != nil {
							t.Fatalf("consumer info of partition consumer %s: %v", c, err)
						}
					}
				}
				if readsMessages[role] {
					st, err := rc.js.Stream(ctx, schema.StreamChat)
					if err != nil {
						t.Fatal(err)
					}
					if m, err := st.GetMsg(ctx, 1); err != nil || !strings.Contains(string(m.Data), "secret") {
						t.Fatalf("the %s role cannot read messages: %v", role, err)
					}
					if _, err := st.GetLastMsgForSubject(ctx, layout.StoredMsg("c1")); err != nil {
						t.Fatalf("the %s role cannot read a conversation's last message: %v", role, err)
					}
				}
				if role != natsrv.RoleService && role != natsrv.RoleHistory && role != schema.RoleIndexer {
					// A reader of a bucket may watch it (KV watchers are
					// ordered consumers on the bucket's stream).
					kv, err := rc.js.KeyValue(ctx, schema.BucketConversations)
					if err != nil {
						t.Fatal(err)
					}
					w, err := kv.Watch(ctx, "c.*")
					if err != nil {
						t.Fatalf("the %s role cannot watch CONVERSATIONS: %v", role, err)
					}
					select {
					case e := <-w.Updates():
						if e == nil || e.Key() != "c.c1" {
							t.Fatalf("the %s role's watcher got %v", role, e)
						}
					case <-time.After(5 * time.Second):
						t.Fatalf("the %s role's watcher got nothing", role)
					}
					if err := w.Stop(); err != nil {
						t.Fatal(err)
					}
				}
				if readsTokens[role] {
					kv, err := rc.js.KeyValue(ctx, schema.BucketPush)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := kv.Get(ctx, "d.alice"); err != nil {
						t.Fatalf("the %s role cannot read devices: %v", role, err)
					}
				}

				// The reproduced attacks.
				rc.refused(t, "creating a stream capturing chat.user.>", api("STREAM.CREATE.EVIL"),
					jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"chat.user.>"}})
				rc.refused(t, "shrinking CHAT to 3 s", api("STREAM.UPDATE."+schema.StreamChat), shrunk)
				rc.refused(t, "deleting CHAT", api("STREAM.DELETE."+schema.StreamChat), nil)
				rc.refused(t, "purging CHAT", api("STREAM.PURGE."+schema.StreamChat), nil)
				// Deleting one message of CHAT is the eraser's alone.
				if role == schema.RoleEraser {
					st, err := rc.js.Stream(ctx, schema.StreamChat)
					if err != nil {
						t.Fatal(err)
					}
					if err := st.SecureDeleteMsg(ctx, 2); err != nil {
						t.Fatalf("the eraser cannot delete a message of CHAT: %v", err)
					}
				} else {
					rc.refused(t, "deleting a message of CHAT", api("STREAM.MSG.DELETE."+schema.StreamChat), map[string]any{"seq": 2})
				}
				rc.refused(t, "updating a bucket", api("STREAM.UPDATE."+schema.KVStream(schema.BucketPresence)), nil)
				rc.refused(t, "an ephemeral consumer on CHAT", api("CONSUMER.CREATE."+schema.StreamChat),
					map[string]any{"stream_name": schema.StreamChat, "config": map[string]any{"ack_policy": "none"}})
				rc.refused(t, "a named consumer on CHAT", api("CONSUMER.CREATE."+schema.StreamChat+".evil"),
					map[string]any{"stream_name": schema.StreamChat, "config": map[string]any{"name": "evil", "ack_policy": "none"}})
				rc.refused(t, "a durable on CHAT", api("CONSUMER.DURABLE.CREATE."+schema.StreamChat+".evil"),
					map[string]any{"stream_name": schema.StreamChat, "config": map[string]any{"durable_name": "evil", "ack_policy": "none"}})
				for _, c := range consumers {
					rc.refused(t, "deleting consumer "+c, api("CONSUMER.DELETE."+schema.StreamChat+"."+c), nil)
					rc.refused(t, "creating or updating consumer "+c, api("CONSUMER.CREATE."+schema.StreamChat+"."+c),
						map[string]any{"stream_name": schema.StreamChat, "config": map[string]any{"durable_name": c, "ack_policy": "none"}})
					if c != own[role] && !(ownsPartitions[role] && slices.Contains(layout.FanoutConsumers(), c)) {
						rc.refused(t, "pulling from another role's consumer "+c, api("CONSUMER.MSG.NEXT."+schema.StreamChat+"."+c),
							map[string]any{"batch": 1, "expires": int64(200 * time.Millisecond)})
					}
				}
				if !readsMessages[role] {
					rc.refused(t, "reading a message by seq", api("DIRECT.GET."+schema.StreamChat), map[string]any{"seq": 1})
					rc.refused(t, "reading a conversation's last message", api("DIRECT.GET."+schema.StreamChat+"."+schema.Msg("c1")), nil)
					rc.refused(t, "reading a message the old way", api("STREAM.MSG.GET."+schema.StreamChat), map[string]any{"seq": 1})
				}
				if !readsTokens[role] {
					rc.refused(t, "reading a push token", api("DIRECT.GET."+schema.KVStream(schema.BucketPush)+"."+schema.KVKey(schema.BucketPush, "d.alice")), nil)
					rc.refused(t, "reading push tokens by seq", api("DIRECT.GET."+schema.KVStream(schema.BucketPush)), map[string]any{"seq": 1})
					rc.refused(t, "watching the push tokens", api("CONSUMER.CREATE."+schema.KVStream(schema.BucketPush)),
						map[string]any{"stream_name": schema.KVStream(schema.BucketPush), "config": map[string]any{"ack_policy": "none"}})
				}
				if !writesConversations[role] {
					rc.publishRefused(t, "writing a conversation document", schema.KVKey(schema.BucketConversations, "c.c1"))
				}
				// Replies of other roles (KV values, messages, tokens) are not
				// its to read.
				rc.subscribeRefused(t, "_INBOX.>")
				for _, other := range natsrv.Roles {
					if other != role {
						rc.subscribeRefused(t, schema.Inbox(other)+".>")
					}
				}
				rc.subscribeRefused(t, "chat.msg.>")
				rc.subscribeRefused(t, "$KV.>")
				if role != schema.RoleGateway {
					rc.subscribeRefused(t, "chat.user.>")
				}
				// Closing a user's connections is the operator's alone.
				rc.publishRefused(t, "kicking a user", schema.UserKick("alice"))
			})
		}
	})

	// The operator's kick reaches a gateway's subscription for the user.
	gw := connectRole(t, s, schema.RoleGateway)
	sub, err := gw.nc.SubscribeSync(schema.UserAll("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := op.Publish(schema.UserKick("alice"), nil); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(5 * time.Second); err != nil || m.Subject != schema.UserKick("alice") {
		t.Fatalf("the gateway did not receive the operator's kick: %v", err)
	}

	// Nothing changed.
	chat, err = ojs.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	if after := chat.CachedInfo().Config; after.MaxAge != before.MaxAge || !slices.Equal(after.Subjects, before.Subjects) {
		t.Fatalf("CHAT changed: %+v", after)
	}
	if info := chat.CachedInfo(); info.State.Msgs != 1 { // the eraser deleted seq 2
		t.Fatalf("CHAT holds %d messages", info.State.Msgs)
	}
	if _, err := ojs.Stream(ctx, "EVIL"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("stream EVIL: %v", err)
	}
	names := chat.ConsumerNames(ctx)
	var got []string
	for n := range names.Name() {
		got = append(got, n)
	}
	slices.Sort(got)
	want := slices.Clone(consumers)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("CHAT's consumers = %v, want %v", got, want)
	}
	for _, c := range consumers {
		ci, err := ojs.Consumer(ctx, schema.StreamChat, c)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := ci.CachedInfo().Config; cfg.AckPolicy != jetstream.AckExplicitPolicy {
			t.Fatalf("consumer %s changed: %+v", c, cfg)
		}
	}
}
