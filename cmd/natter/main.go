// Command natter is Natter's one binary. `natter serve` runs everything in
// one process on an embedded NATS; `natter nats` runs a node of a NATS
// cluster, and `natter gateway|history|presence|pushnotify` each run one
// role against it. `natter migrate` creates the ScyllaDB schema (and the
// NATS schema on a NATS that natter nats does not run), `natter admin`
// inspects and changes users and conversations as the operator, `natter
// token` mints a client JWT and `natter chat` is a terminal client. The
// usage text below lists them all.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const usage = `natter — a self-hosted chat backend on NATS JetStream

usage:
  natter serve   [flags]   run everything in one process (embedded NATS)
  natter nats    [flags]   run one embedded NATS node (JetStream, cluster routes) for the other roles
  natter gateway [flags]   run a WebSocket gateway (and fan-out worker) against an external NATS
  natter presence [flags]  run the presence service (one per cluster) against an external NATS
  natter history [flags]   run the history writer and API against an external NATS
  natter history rebuild [flags]  refill a lost or new history store from the CHAT stream
  natter search rebuild [flags]   refill a lost or new search index from the history store
  natter pushnotify [flags] run the push notification dispatcher against an external NATS
  natter events [flags]     run the events for services (bots) and their webhooks against an external NATS
  natter indexer [flags]    run the search indexer and search API against an external NATS (embedded index under --data/search)
  natter migrate [flags]   create or update the ScyllaDB/Cassandra history schema (--cql, --keyspace)
                           and the NATS streams, buckets and consumers (--nats-url, the operator's)
  natter service add|ls|rm|rotate  manage service identities: a NATS user per internal service, posting as its senders only (docs/services.md)
  natter credentials [flags]  print a role's NATS URL list from the cluster's nats-auth.json (creating it)
  natter admin   [flags] COMMAND  inspect users, conversations and consumers; add/remove members, close a user's connections
  natter user    [flags] erase UID  erase a user (GDPR): conversations, devices, markers, attachments; messages become tombstones
  natter user    [flags] export UID write a user's archive (NDJSON): conversations, their messages, attachment ids
  natter token   [flags]   print a client JWT
  natter chat    [flags]   chat from a terminal (a small client for trying it out)

run "natter <command> -h" for its flags.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "natter:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	if len(args) > 1 && args[0] == "history" && args[1] == "rebuild" {
		return rebuildCmd(args[2:], stdout, stderr)
	}
	if len(args) > 1 && args[0] == "search" && args[1] == "rebuild" {
		return searchRebuildCmd(args[2:], stdout, stderr)
	}
	switch args[0] {
	case "serve", "gateway", "presence", "history", "pushnotify", "events", "indexer":
		return serve(args[1:], stderr, args[0])
	case "nats":
		return natsNode(args[1:], stderr)
	case "migrate":
		return migrateCmd(args[1:], stdout, stderr)
	case "credentials":
		return credentialsCmd(args[1:], stdout, stderr)
	case "admin":
		return adminCmd(args[1:], stdout, stderr)
	case "user":
		return userCmd(args[1:], stdout, stderr)
	case "service":
		return serviceCmd(args[1:], stdout, stderr)
	case "token":
		return token(args[1:], stdout, stderr)
	case "chat":
		return chat(args[1:], os.Stdin, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format must be json or text, not %q", format)
	}
}

// signalContext ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

const shutdownTimeout = 30 * time.Second
