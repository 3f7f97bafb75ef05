package app

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/gateway"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/pushnotify"
)

// TestGatewayAdapters runs the adapters of gateway.go over the real parts
// on an in-process JetStream: the gateway must see its own sentinels,
// with the parts' text for the client.
func TestGatewayAdapters(t *testing.T) {
	ns := natstest.Start(t)
	_, js := natstest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}

	t.Run("conversations", func(t *testing.T) {
		store, err := conversation.New(ctx, conversation.Config{MaxTitleBytes: 5}, js)
		if err != nil {
			t.Fatal(err)
		}
		convs := gatewayConversations{store}
		alice := gateway.Actor{User: "alice", Session: "s1"}
		c, err := convs.CreateGroup(ctx, alice, "group", []string{"bob"})
		if err != nil {
			t.Fatal(err)
		}
		conv := c.Protocol(10).Conv
		if got := c.SortedMembers(); strings.Join(got, ",") != "alice,bob" {
			t.Fatalf("members %v", got)
		}
		for _, tc := range []struct {
			name string
			err  error
			kind error
			text string
		}{
			{"title too long", second(convs.CreateGroup(ctx, alice, "a long title", nil)), gateway.ErrBadRequest, "title must be valid UTF-8"},
			{"not a member", second(convs.Get(ctx, conv, "carol")), gateway.ErrForbidden, ""},
			{"not the owner", convs.RemoveMember(ctx, gateway.Actor{User: "bob"}, conv, "alice"), gateway.ErrRefused, "only the owner"},
			{"remove a non-member", convs.RemoveMember(ctx, alice, conv, "zed"), gateway.ErrNotFound, "zed is not a member"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if !errors.Is(tc.err, tc.kind) {
					t.Fatalf("got %v, want %v", tc.err, tc.kind)
				}
				// The text is the part's own, not the gateway sentinel's.
				if !strings.Contains(tc.err.Error(), tc.text) || strings.Contains(tc.err.Error(), "gateway:") {
					t.Fatalf("text %q, want the conversation error's, containing %q", tc.err, tc.text)
				}
			})
		}
		// A failed Get is a nil interface, not a typed nil the gateway
		// would take for a conversation.
		if c, err := convs.Get(ctx, conv, "carol"); c != nil || err == nil {
			t.Fatalf("got %v, %v", c, err)
		}
		moved, err := convs.MarkRead(ctx, conv, "alice", 3)
		if err != nil || !moved {
			t.Fatalf("MarkRead: %v, %v", moved, err)
		}
		if seq, err := convs.ReadSeq(ctx, conv, "alice"); err != nil || seq != 3 {
			t.Fatalf("ReadSeq: %d, %v", seq, err)
		}
	})

	t.Run("messages", func(t *testing.T) {
		store, err := localstore.New(localstore.Config{Dir: filepath.Join(t.TempDir(), "h"), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		stream, err := history.NewStream(ctx, js)
		if err != nil {
			t.Fatal(err)
		}
		reader, err := history.NewReader(ctx, js, store, stream)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := (gatewayMessages{reader}).Get(ctx, "g1", 42); !errors.Is(err, gateway.ErrNotFound) {
			t.Fatalf("missing message: %v, want gateway.ErrNotFound", err)
		}
	})

	t.Run("devices", func(t *testing.T) {
		kv, err := js.KeyValue(ctx, schema.BucketPush)
		if err != nil {
			t.Fatal(err)
		}
		store := pushnotify.NewStore(pushnotify.StoreConfig{}, kv)
		devs := gatewayDevices{s: store}
		for _, tc := range []struct {
			name, platform, token, text string
		}{
			{"unknown platform", "pager", "t", `platform must be "apns", "fcm" or "webpush"`},
			{"empty token", pushnotify.PlatformAPNs, "", "token must be 1 to 4096 bytes"},
			{"token too long", pushnotify.PlatformFCM, strings.Repeat("x", pushnotify.MaxTokenBytes+1), "token must be 1 to 4096 bytes"},
			{"not a Web Push subscription", pushnotify.PlatformWebPush, `{"endpoint":"http://x"}`, "token is not a Web Push subscription: "},
			{"loopback endpoint", pushnotify.PlatformWebPush, subscription("https://127.0.0.1:8443/p"), "Web Push endpoint not allowed: webpush: endpoint refused: 127.0.0.1 is not a public address"},
			{"metadata endpoint", pushnotify.PlatformWebPush, subscription("https://169.254.169.254/"), "Web Push endpoint not allowed: "},
			{"unknown push service", pushnotify.PlatformWebPush, subscription("https://push.attacker.example/p"), "Web Push endpoint not allowed: webpush: endpoint refused: host push.attacker.example is not a known push service"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := devs.Register(ctx, "alice", tc.platform, tc.token)
				if !errors.Is(err, gateway.ErrBadRequest) || !strings.HasPrefix(err.Error(), tc.text) {
					t.Fatalf("got %v, want ErrBadRequest saying %q", err, tc.text)
				}
			})
		}
		d, err := devs.Register(ctx, "alice", pushnotify.PlatformAPNs, "tok")
		if err != nil || d.ID != pushnotify.DeviceID(pushnotify.PlatformAPNs, "tok") {
			t.Fatalf("Register: %+v, %v", d, err)
		}
		list, err := devs.List(ctx, "alice")
		if err != nil || len(list) != 1 || list[0].ID != d.ID || list[0].Platform != d.Platform || !list[0].Added.Equal(d.Added) {
			t.Fatalf("List: %+v, %v", list, err)
		}
		if err := devs.Unregister(ctx, "alice", "", "tok"); err != nil {
			t.Fatal(err)
		}
		if list, err := devs.List(ctx, "alice"); err != nil || len(list) != 0 {
			t.Fatalf("after Unregister: %+v, %v", list, err)
		}
		if err := devs.Mute(ctx, "alice", "g1", protocol.MuteMentions, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if level, err := devs.MuteLevel(ctx, "alice", "g1"); err != nil || level != protocol.MuteMentions {
			t.Fatalf("MuteLevel: %q, %v", level, err)
		}
	})
}

// subscription is a well-formed Web Push subscription to endpoint.
func subscription(endpoint string) string {
	return `{"endpoint":"` + endpoint + `","keys":{"p256dh":"BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4","auth":"BTBZMqHH6r4Tts7J_aSIgg"}}`
}

// second returns the error of a two-result call.
func second[T any](_ T, err error) error { return err }
