package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/lease"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/search"
	"github.com/natter-chat/natter/search/opensearch"
)

// searchRebuildCmd is `natter search rebuild`: it fills a lost or new
// search index from the history store (search.Rebuild) and puts the
// search consumer at the start of each message stream, so the indexer
// goes on from there. Like `natter history rebuild` it reaches NATS as
// the operator (--nats-url), or opens the JetStream store in --data of a
// stopped natter serve.
func searchRebuildCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter search rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats-url", os.Getenv("NATTER_NATS_URL"), "the operator's NATS URL (<data>/nats.url: the rebuild deletes and creates the search consumer, which no role may); empty: open the JetStream store in --data (natter serve must be stopped)")
	natsCA := fs.String("nats-ca", "", "PEM CA file to trust for a tls:// --nats-url")
	dataDir := fs.String("data", "./data", "data directory: the embedded search index is <data>/search and the embedded history store <data>/history; without --nats-url the JetStream store is read from here")
	openSearchURL := fs.String("opensearch-url", "", "rebuild the index in OpenSearch at this URL instead of the embedded one")
	openSearchIndex := fs.String("opensearch-index", "natter-messages", "the OpenSearch index of --opensearch-url")
	progress := fs.String("progress", "", "file keeping the rebuild's progress, so that a rerun after a stop goes on from there (default <data>/search-rebuild.json)")
	batch := fs.Int("batch", schema.SearchBatch, "rows read and messages written per batch")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	cql := addCQLFlags(fs, true)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *progress == "" {
		*progress = filepath.Join(*dataDir, "search-rebuild.json")
	}
	log, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	js, closeNATS, err := operatorJetStream(ctx, *natsURL, *natsCA, *dataDir, log, "natter-search-rebuild")
	if err != nil {
		return err
	}
	defer closeNATS()

	// The indexer lease: no embedded indexer runs while the index is
	// rebuilt, and none starts.
	l, err := lease.Claim(ctx, js, lease.Config{Key: schema.LeaseSearchIndexer, Owner: "search-rebuild",
		TTL: 15 * time.Second, What: "search index rebuild", Logger: log})
	if errors.Is(err, lease.ErrHeld) {
		return fmt.Errorf("an indexer runs (stop natter serve or natter indexer first): %w", err)
	}
	if err != nil {
		return err
	}

	h := app.HistoryConfig{Dir: filepath.Join(*dataDir, "history")}
	if err := cql.history(&h); err != nil {
		return err
	}
	store, closeStore, err := app.OpenHistory(ctx, h, log)
	if err != nil {
		return fmt.Errorf("%w (is a natter history writer still running on it?)", err)
	}
	defer closeStore()
	scfg := app.SearchConfig{Dir: filepath.Join(*dataDir, "search")}
	where := scfg.Dir
	if *openSearchURL != "" {
		scfg = app.SearchConfig{OpenSearch: &opensearch.Config{URL: *openSearchURL, Index: *openSearchIndex}}
		where = "OpenSearch index " + *openSearchIndex
	}
	idx, closeIdx, err := app.OpenSearch(ctx, scfg)
	if err != nil {
		return err
	}
	defer func() { _ = closeIdx() }()
	convs, err := conversation.IDs(ctx, js)
	if err != nil {
		return err
	}

	began := time.Now()
	var st search.RebuildStats
	err = lease.Run(ctx, l, func(ctx context.Context) error {
		var err error
		st, err = search.Rebuild(ctx, search.RebuildConfig{JS: js, Index: idx, Store: store, Convs: convs,
			Batch: *batch, Progress: *progress, Logger: log})
		return err // nil: lease.Run returns, releasing the lease
	})
	if err != nil {
		return err
	}
	var starts []string
	for _, s := range st.Streams {
		starts = append(starts, fmt.Sprintf("%s after seq %d", s.Stream, s.Floor))
	}
	resumed := ""
	if st.Resumed {
		resumed = " (resumed)"
	}
	fmt.Fprintf(stdout, "search rebuild of %s%s: %d conversations, %d rows read, %d messages indexed, %d removed (deleted, erased or disappearing), %d passes, in %s; the indexer goes on from %s\n",
		where, resumed, st.Convs, st.Rows, st.Indexed, st.Removed, st.Passes, time.Since(began).Round(time.Millisecond), strings.Join(starts, ", "))
	return nil
}
