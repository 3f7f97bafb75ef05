// Command echobot is an example bot: a service that follows the
// conversations its sender is in (its events consumer, docs/bots.md) and
// answers every text message with "echo: <text>" through the chat service
// API, as the sender the event names. Register it and run it:
//
//	natter service add echo --as echo-bot
//	go run ./examples/echobot --credentials data/nats-svc-echo.url
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/natter-chat/natter/client/service"
	"github.com/natter-chat/natter/protocol"
)

func main() {
	creds := flag.String("credentials", os.Getenv("NATTER_SERVICE_CREDENTIALS"),
		"the service's credentials: the file `natter service add` wrote, or its NATS URL")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	c, err := service.Connect(*creds)
	if err != nil {
		log.Error("Could not connect.", "err", err)
		os.Exit(1)
	}
	defer c.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("Echo bot running.", "service", c.Name())
	if err := run(ctx, c, log); err != nil {
		log.Error("Echo bot stopped.", "err", err)
		os.Exit(1)
	}
}

// run answers events until ctx ends.
func run(ctx context.Context, c *service.Client, log *slog.Logger) error {
	return c.Events(ctx, func(ctx context.Context, ev *protocol.ServiceEvent) error {
		reply, ok := echo(ev)
		if !ok {
			return nil
		}
		// The client id comes from the event's: an event handled twice
		// (redelivered after a crash) posts one reply.
		_, err := c.Post(ctx, ev.As[0], ev.Conv, "echo-"+ev.ID, reply)
		if err != nil {
			log.Warn("Could not answer; the event comes again.", "conv", ev.Conv, "seq", ev.Seq, "err", err)
		}
		return err
	})
}

// echo returns the body answering ev: a message with a text, in a
// conversation where the bot has a sender.
func echo(ev *protocol.ServiceEvent) (json.RawMessage, bool) {
	if ev.Type != protocol.ServiceEventMessage || len(ev.As) == 0 {
		return nil, false
	}
	var body struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(ev.Body, &body) != nil || body.Text == "" {
		return nil, false
	}
	out, err := json.Marshal(map[string]string{"text": fmt.Sprint("echo: ", body.Text)})
	return out, err == nil
}
