package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/admin"
	"github.com/natter-chat/natter/nats/natsrv"
)

const adminUsage = `usage: natter admin [flags] COMMAND
  user show UID        conversations (role, read marker), presence, open connections, push devices, block list
  user kick UID        close every WebSocket connection of the user on every gateway (close code 4009)
  conv show ID         kind, title, members with roles and read markers, last seq, fan-out partition
  conv add ID UID      add UID to the group ID (as the operator: no member or add_policy needed)
  conv remove ID UID   remove UID from the group ID
  stream lag           each consumer of CHAT: pending, ack pending, last delivered, lag against the hot window
  streams repartition M  move the messages to M message streams (1 = the one CHAT stream; docs/scaling.md):
                       a short write fence, new streams above every old seq; give it --timeout 5m
flags (before or after the command):
`

// reporter is what every admin command answers: JSON is its struct tags.
type reporter interface{ WriteTable(io.Writer) error }

// adminCmd is `natter admin`: an operator's look at users, conversations
// and consumers, and the few changes made by hand (package admin). It
// connects as the operator user: --nats-url, or <data>/nats.url written by
// natter serve and natter nats.
func adminCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, adminUsage)
		fs.PrintDefaults()
	}
	natsURL := fs.String("nats-url", os.Getenv("NATTER_NATS_URL"), "the operator's NATS URL; empty: read <data>/"+natsrv.OperatorURLFile)
	natsCA := fs.String("nats-ca", "", "PEM CA file to trust for a tls:// --nats-url")
	dataDir := fs.String("data", "./data", "data directory of natter serve or natter nats, holding "+natsrv.OperatorURLFile)
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	wait := fs.Duration("wait", 10*time.Second, "user kick: how long to wait for the connections to close")
	// Flags may come after the command words too.
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		words = append(words, fs.Arg(0))
		args = fs.Args()[1:]
	}
	run, err := adminAction(words)
	if err != nil {
		fs.Usage()
		return err
	}
	url := *natsURL
	if url == "" {
		b, err := os.ReadFile(filepath.Join(*dataDir, natsrv.OperatorURLFile))
		if err != nil {
			return fmt.Errorf("no --nats-url, and the operator's URL file cannot be read (is --data the data directory of natter serve or natter nats?): %w", err)
		}
		url = strings.TrimSpace(string(b))
	}
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	opts := []nats.Option{nats.Name("natter-admin"), nats.Timeout(10 * time.Second)}
	if *natsCA != "" {
		opts = append(opts, nats.RootCAs(*natsCA))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS as the operator: %w", err)
	}
	defer nc.Close()
	a, err := admin.New(ctx, admin.Config{KickWait: *wait}, nc)
	if err != nil {
		return err
	}
	r, err := run(ctx, a)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.WriteTable(stdout)
}

// adminAction picks the admin call the command words name.
func adminAction(w []string) (func(context.Context, *admin.Admin) (reporter, error), error) {
	cmd := strings.Join(w[:min(len(w), 2)], " ")
	want := map[string]int{"user show": 3, "user kick": 3, "conv show": 3, "conv add": 4, "conv remove": 4, "stream lag": 2, "streams repartition": 3}
	n, ok := want[cmd]
	if !ok {
		if len(w) == 0 {
			return nil, errors.New("admin: name a command")
		}
		return nil, fmt.Errorf("admin: unknown command %q", strings.Join(w, " "))
	}
	if len(w) != n {
		return nil, fmt.Errorf("admin %s: want %d arguments, got %d", cmd, n-2, len(w)-2)
	}
	switch cmd {
	case "user show":
		return func(ctx context.Context, a *admin.Admin) (reporter, error) { return a.User(ctx, w[2]) }, nil
	case "user kick":
		return func(ctx context.Context, a *admin.Admin) (reporter, error) { return a.Kick(ctx, w[2]) }, nil
	case "conv show":
		return func(ctx context.Context, a *admin.Admin) (reporter, error) { return a.Conv(ctx, w[2]) }, nil
	case "conv add":
		return func(ctx context.Context, a *admin.Admin) (reporter, error) { return a.AddMember(ctx, w[2], w[3]) }, nil
	case "conv remove":
		return func(ctx context.Context, a *admin.Admin) (reporter, error) { return a.RemoveMember(ctx, w[2], w[3]) }, nil
	case "streams repartition":
		to, err := strconv.Atoi(w[2])
		if err != nil {
			return nil, fmt.Errorf("admin streams repartition: %q is not a number of streams", w[2])
		}
		return func(ctx context.Context, a *admin.Admin) (reporter, error) { return a.Repartition(ctx, to, nil) }, nil
	default:
		return func(ctx context.Context, a *admin.Admin) (reporter, error) { return a.StreamLag(ctx) }, nil
	}
}
