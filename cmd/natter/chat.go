package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

// chat is a line-oriented terminal client: each line typed is sent, every
// message of the conversation is printed. It exists so that a newcomer can
// chat with two terminals and nothing else installed.
func chat(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "ws://127.0.0.1:8080/v1/ws", "gateway WebSocket URL")
	user := fs.String("user", "", "your user id (a token is signed for it with the dev secret under --data, or NATTER_JWT_SECRET)")
	tok := fs.String("token", "", "a JWT to use instead of signing one")
	dataDir := fs.String("data", "./data", "data directory of a --dev server")
	with := fs.String("with", "", "chat directly with this user")
	conv := fs.String("conv", "", "chat in this existing conversation")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*with == "") == (*conv == "") {
		return errors.New("name exactly one of --with USER or --conv ID")
	}
	t := *tok
	if t == "" {
		if *user == "" {
			return errors.New("--user (or --token) is required")
		}
		s, err := tokenSecret("", *dataDir)
		if err != nil {
			return err
		}
		if t, err = auth.IssueHS256(s, *user, 24*time.Hour, time.Now()); err != nil {
			return err
		}
	}
	ctx, stop := signalContext()
	defer stop()
	c, err := client.Dial(ctx, *url, client.Options{Token: t, Device: "terminal"})
	if err != nil {
		return err
	}
	defer c.Close()
	me := c.Welcome().User
	id := *conv
	if *with != "" {
		cv, err := c.CreateDirect(ctx, *with)
		if err != nil {
			return err
		}
		id = cv.Conv
	}
	hist, err := c.History(ctx, id, 0, 20)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "conversation %s as %s; type a line and press enter to send, ctrl-d to quit\n", id, me)
	for _, m := range hist.Messages {
		printMessage(stdout, m)
	}
	go func() {
		for ev := range c.Events() {
			switch ev.Type {
			case protocol.TypeMessage:
				var m protocol.Message
				if ev.Decode(&m) == nil && m.Conv == id {
					printMessage(stdout, &m)
				}
			case protocol.TypeTyping:
				var ty protocol.Typing
				if ev.Decode(&ty) == nil && ty.Conv == id {
					fmt.Fprintf(stdout, "  (%s is typing)\n", ty.User)
				}
			}
		}
	}()
	lines := bufio.NewScanner(stdin)
	for lines.Scan() {
		line := strings.TrimSpace(lines.Text())
		if line == "" {
			continue
		}
		ack, err := c.Send(ctx, id, "", map[string]string{"text": line})
		if err != nil {
			fmt.Fprintln(stderr, "send failed:", err)
			continue
		}
		printMessage(stdout, &protocol.Message{Seq: ack.Seq, Sender: me, TS: ack.TS, Body: mustJSON(map[string]string{"text": line})})
	}
	return lines.Err()
}

func printMessage(w io.Writer, m *protocol.Message) {
	var body struct {
		Text string `json:"text"`
	}
	text := string(m.Body)
	if json.Unmarshal(m.Body, &body) == nil && body.Text != "" {
		text = body.Text
	}
	if m.Kind != "" {
		text = fmt.Sprintf("[%s of #%d] %s", m.Kind, m.Ref, text)
	}
	fmt.Fprintf(w, "#%d %s: %s\n", m.Seq, m.Sender, text)
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// tokenSecret finds the HS256 secret: the flag, NATTER_JWT_SECRET, or the
// dev secret a --dev server generated under dataDir.
func tokenSecret(flagValue, dataDir string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if s := os.Getenv("NATTER_JWT_SECRET"); s != "" {
		return s, nil
	}
	b, err := os.ReadFile(dataDir + "/" + devSecretFile)
	if err != nil || strings.TrimSpace(string(b)) == "" {
		return "", errors.New("no JWT secret: set NATTER_JWT_SECRET or --jwt-secret, or point --data at a --dev server's data directory")
	}
	return strings.TrimSpace(string(b)), nil
}
