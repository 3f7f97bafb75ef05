package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/nats/natsrv"
)

// rebuildCmd is `natter history rebuild`: it fills a lost, old or new
// history store with what the CHAT stream still holds (history.Rebuild).
// It reads the stream from an external NATS (--nats-url), or, without one,
// from the JetStream store in --data of a stopped `natter serve`, which it
// opens itself.
func rebuildCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter history rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats-url", os.Getenv("NATTER_NATS_URL"), "the operator's NATS URL (<data>/nats.url: rebuilding reads CHAT through a consumer of its own, which no role may create); empty: open the JetStream store in --data (natter serve must be stopped)")
	natsCA := fs.String("nats-ca", "", "PEM CA file to trust for a tls:// --nats-url")
	dataDir := fs.String("data", "./data", "data directory: the embedded history store is <data>/history, and without --nats-url the JetStream store is read from here")
	batch := fs.Int("batch", 500, "messages appended per batch")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	cql := addCQLFlags(fs, true)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	log, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()

	js, closeNATS, err := operatorJetStream(ctx, *natsURL, *natsCA, *dataDir, log, "natter-history-rebuild")
	if err != nil {
		return err
	}
	defer closeNATS()

	h := app.HistoryConfig{Dir: filepath.Join(*dataDir, "history")}
	if err := cql.history(&h); err != nil {
		return err
	}
	where := h.Dir
	if h.CQL != nil {
		where = "keyspace " + h.CQL.Keyspace
	}
	store, closeStore, err := app.OpenHistory(ctx, h, log)
	if err != nil {
		return fmt.Errorf("%w (is a natter history writer still running on it?)", err)
	}
	defer closeStore()

	start := time.Now()
	st, err := history.Rebuild(ctx, js, store, *batch)
	var ranges []string
	for _, r := range st.Streams {
		ranges = append(ranges, fmt.Sprintf("%s seqs %d..%d", r.Stream, r.First, r.Last))
	}
	fmt.Fprintf(stdout, "rebuild of %s from %s: read %d messages, appended %d rows (rows already stored left as they were), skipped %d invalid, in %s\n",
		where, strings.Join(ranges, ", "), st.Read, st.Appended, st.Skipped, time.Since(start).Round(time.Millisecond))
	if errors.Is(err, history.ErrConflict) {
		return fmt.Errorf("%w\nthe store holds rows of another stream at these seqs; rebuild into an empty store instead", err)
	}
	return err
}

// operatorJetStream connects a rebuild to NATS as the operator: to
// natsURL, or, without one, to the JetStream store in dataDir of a
// stopped natter serve, which it opens itself. closeNATS closes both.
func operatorJetStream(ctx context.Context, natsURL, natsCA, dataDir string, log *slog.Logger, name string) (js jetstream.JetStream, closeNATS func(), err error) {
	var nc *nats.Conn
	var srv *natsrv.Server
	if natsURL != "" {
		opts := []nats.Option{nats.Name(name)}
		if natsCA != "" {
			opts = append(opts, nats.RootCAs(natsCA))
		}
		if nc, err = nats.Connect(natsURL, opts...); err != nil {
			return nil, nil, fmt.Errorf("connect to NATS: %w", err)
		}
	} else {
		srv, err = natsrv.Start(ctx, natsrv.Config{Listen: "127.0.0.1:-1", DataDir: dataDir, Logger: log})
		if err != nil {
			return nil, nil, fmt.Errorf("open the JetStream store in %s (is natter serve still running?): %w", dataDir, err)
		}
		if nc, err = srv.Connect(name); err != nil {
			shutdown(srv)
			return nil, nil, err
		}
	}
	closeNATS = func() {
		nc.Close()
		if srv != nil {
			shutdown(srv)
		}
	}
	if js, err = jetstream.New(nc); err != nil {
		closeNATS()
		return nil, nil, err
	}
	return js, closeNATS, nil
}

func shutdown(srv *natsrv.Server) {
	sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer scancel()
	_ = srv.Shutdown(sctx)
}
