package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

// TestMain runs the Go client's scenario instead of the tests when this
// binary is the command natter-conformance run started: that is how an
// SDK's own test program is run.
func TestMain(m *testing.M) {
	if os.Getenv("NATTER_CONFORMANCE_SCENARIO") == "go-client" {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := scenario(ctx, os.Getenv("NATTER_WS_URL"), os.Getenv("NATTER_TOKEN_ALICE"), os.Getenv("NATTER_TOKEN_BOB"))
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "scenario:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// scenario drives the Go client (client/) through most requests, errors
// and pushes included.
func scenario(ctx context.Context, url, aliceToken, bobToken string) error {
	alice, err := client.Dial(ctx, url, client.Options{Token: aliceToken})
	if err != nil {
		return err
	}
	defer alice.Close()
	bob, err := client.Dial(ctx, url, client.Options{Token: bobToken, HeaderAuth: true, Device: "phone"})
	if err != nil {
		return err
	}
	defer bob.Close()
	steps := []struct {
		name string
		do   func() error
	}{
		{"ping", func() error { return alice.Ping(ctx) }},
		{"conversation", func() error {
			g, err := alice.CreateGroup(ctx, "Team", "bob")
			if err != nil {
				return err
			}
			if _, err := bob.NextEvent(ctx, protocol.TypeConversation); err != nil {
				return err
			}
			ack, err := alice.Send(ctx, g.Conv, "c-1", map[string]any{"text": "hi"})
			if err != nil {
				return err
			}
			if _, err := bob.NextEvent(ctx, protocol.TypeMessage); err != nil {
				return err
			}
			if _, err := alice.SendKind(ctx, g.Conv, "c-2", protocol.KindEdit, ack.Seq, map[string]any{"text": "hi!"}); err != nil {
				return err
			}
			if _, err := alice.Resend(ctx, g.Conv, "c-1", map[string]any{"text": "hi"}); err != nil {
				return err
			}
			if _, err := bob.Sync(ctx, g.Conv, 0, 10); err != nil {
				return err
			}
			if _, err := bob.History(ctx, g.Conv, 0, 10); err != nil {
				return err
			}
			if _, err := bob.Members(ctx, g.Conv, "", 10); err != nil {
				return err
			}
			if _, err := bob.Conversations(ctx); err != nil {
				return err
			}
			if err := bob.Typing(ctx, g.Conv); err != nil {
				return err
			}
			if err := bob.MarkRead(ctx, g.Conv, ack.Seq); err != nil {
				return err
			}
			if _, err := bob.Request(ctx, map[string]any{"type": "presence", "users": []string{"alice", "stranger"}}); err != nil {
				return err
			}
			if _, err := bob.Request(ctx, map[string]any{"type": "mute", "conv": g.Conv, "until": nil}); err != nil {
				return err
			}
			if err := alice.AddMembers(ctx, g.Conv, "carol"); err != nil {
				return err
			}
			if err := alice.RemoveMember(ctx, g.Conv, "carol"); err != nil {
				return err
			}
			return alice.Leave(ctx, g.Conv)
		}},
		{"consent", func() error {
			d, err := alice.CreateDirect(ctx, "bob")
			if err != nil {
				return err
			}
			if _, err := bob.Accept(ctx, d.Conv); err != nil {
				return err
			}
			return bob.Hide(ctx, d.Conv)
		}},
		{"devices and reauth", func() error {
			if _, err := bob.Request(ctx, map[string]any{"type": "register_device", "platform": "apns", "token": "a1b2c3"}); err != nil {
				return err
			}
			if _, err := bob.Request(ctx, map[string]any{"type": "devices"}); err != nil {
				return err
			}
			if _, err := bob.Request(ctx, map[string]any{"type": "unregister_device", "token": "a1b2c3"}); err != nil {
				return err
			}
			return bob.Reauth(ctx, bobToken)
		}},
		{"blocking and settings", func() error {
			if _, err := alice.Block(ctx, "mallory"); err != nil {
				return err
			}
			if _, err := alice.Unblock(ctx, "mallory"); err != nil {
				return err
			}
			if _, err := alice.Blocked(ctx); err != nil {
				return err
			}
			_, err := alice.Settings(ctx)
			return err
		}},
		{"errors", func() error {
			if _, err := alice.Send(ctx, "g_nobody", "c-3", map[string]any{}); !isCode(err, protocol.CodeForbidden) {
				return fmt.Errorf("send to a stranger's conversation: %v", err)
			}
			if _, err := alice.Request(ctx, map[string]any{"type": "sync", "conv": "g_x", "after": "40"}); !isCode(err, protocol.CodeBadRequest) {
				return fmt.Errorf("sync with a string after: %v", err)
			}
			if _, err := alice.Request(ctx, map[string]any{"type": "nope"}); !isCode(err, protocol.CodeBadRequest) {
				return fmt.Errorf("unknown type: %v", err)
			}
			// A refused typing without id gets its error without an id
			// (forbidden); the ping behind it still gets its pong.
			if err := alice.Typing(ctx, "g_nobody"); err != nil {
				return err
			}
			return alice.Ping(ctx)
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

func isCode(err error, code string) bool {
	var pe *protocol.Error
	return errors.As(err, &pe) && pe.Code == code
}

// TestRunGoClient runs natter-conformance run against the Go client: this
// test binary, re-executed as the command, runs the scenario through the
// recording proxy in front of a fresh natter, and every frame conforms.
func TestRunGoClient(t *testing.T) {
	t.Setenv("NATTER_CONFORMANCE_SCENARIO", "go-client")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err = run(ctx, []string{"run", "--", exe}, nil, &out, &errOut)
	t.Logf("%s%s", out.String(), errOut.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{"ok: every frame conforms", "on 2 connections"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestCheckFindsProblems feeds check logs that break the spec, one rule
// each, and one that does not.
func TestCheckFindsProblems(t *testing.T) {
	const hello = `{"dir":"sent","frame":{"type":"hello","id":"h","token":"x"}}
{"dir":"recv","frame":{"type":"welcome","id":"h","user":"alice","session":"s","heartbeat_s":20}}
`
	cases := []struct {
		name, log, want string
	}{
		{"good", hello + `{"dir":"sent","frame":{"type":"ping","id":"p"}}
{"dir":"sent","frame":{"type":"typing","conv":"g_1"}}
{"dir":"recv","frame":{"type":"typing","conv":"g_1","user":"bob"}}
{"dir":"sent","frame":"{\"type\":\"sync\",\"id\":\"s\",\"conv\":\"g_1\",\"after\":\"x\"}"}
{"dir":"recv","frame":{"type":"pong","id":"p"}}
{"dir":"recv","frame":{"type":"error","id":"s","code":"bad_request","message":"after"}}
`, ""},
		{"out of order", hello + `{"dir":"sent","frame":{"type":"ping","id":"p1"}}
{"dir":"sent","frame":{"type":"ping","id":"p2"}}
{"dir":"recv","frame":{"type":"pong","id":"p2"}}
`, "replies come in request order"},
		{"push with an id", hello + `{"dir":"recv","frame":{"type":"message","id":"x","conv":"g","seq":1,"sender":"a","client_id":"c","ts":"t","body":{},"prev":0}}
`, "server frame"},
		{"wrong reply type", hello + `{"dir":"sent","frame":{"type":"ping","id":"p"}}
{"dir":"recv","frame":{"type":"ok","id":"p"}}
`, `frames.json says "pong"`},
		{"error code not listed", hello + `{"dir":"sent","frame":{"type":"ping","id":"p"}}
{"dir":"recv","frame":{"type":"error","id":"p","code":"forbidden","message":"no"}}
`, "does not list"},
		{"unknown field", hello + `{"dir":"sent","frame":{"type":"ping","id":"p"}}
{"dir":"recv","frame":{"type":"pong","id":"p","extra":true}}
`, "server frame"},
		{"accepted what the schema refuses", hello + `{"dir":"sent","frame":{"type":"send","id":"s","conv":"g_1","body":{}}}
{"dir":"recv","frame":{"type":"ack","id":"s","conv":"g_1","seq":3,"ts":"2026-11-27T01:39:17Z"}}
`, "the schema refuses"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), []string{"check", "-"}, strings.NewReader(tc.log), &out, &out)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("check: %v\n%s", err, out.String())
				}
				return
			}
			if !errors.Is(err, errNonConformant) || !strings.Contains(out.String(), tc.want) {
				t.Fatalf("check = %v, output %q; want a failure saying %q", err, out.String(), tc.want)
			}
		})
	}
}
