package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/natter-chat/natter/gateway"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/search"
	"github.com/natter-chat/natter/search/bleveindex"
	"github.com/natter-chat/natter/search/opensearch"
)

// SearchConfig says where the search index is. The first of Index,
// OpenSearch and Dir that is set is used; with none, the indexer role does
// not run (the gateways answer search unavailable unless another process
// runs it).
type SearchConfig struct {
	// Index is an index the caller opened (and closes).
	Index search.Index
	// OpenSearch keeps the index in OpenSearch (search/opensearch), which
	// any number of indexers may share.
	OpenSearch *opensearch.Config
	// Dir opens the embedded Bleve index (search/bleveindex) there; the
	// App closes it. natter serve and natter indexer put it under --data.
	Dir string
	// Indexer tunes the indexer.
	Indexer search.IndexerConfig
}

// Configured reports whether c names an index.
func (c SearchConfig) Configured() bool { return c.Index != nil || c.OpenSearch != nil || c.Dir != "" }

// OpenSearch opens the index cfg names; closer is nil when the caller
// owns it.
func OpenSearch(ctx context.Context, cfg SearchConfig) (idx search.Index, closer func() error, err error) {
	switch {
	case cfg.Index != nil:
		return cfg.Index, nil, nil
	case cfg.OpenSearch != nil:
		x, err := opensearch.New(ctx, *cfg.OpenSearch)
		if err != nil {
			return nil, nil, err
		}
		return x, x.Close, nil
	case cfg.Dir != "":
		x, err := bleveindex.New(bleveindex.Config{Dir: cfg.Dir})
		if err != nil {
			return nil, nil, err
		}
		return x, x.Close, nil
	}
	return nil, nil, errors.New("app: no search index configured")
}

// startIndexer runs the indexer and serves the search API on a NATS
// connection of the indexer role. The part closes the API, then the
// index, once the indexer returned.
func (a *App) startIndexer(ctx context.Context, _ *http.ServeMux) (*part, error) {
	if !a.cfg.Search.Configured() {
		a.log.Info("search is off: no search index configured")
		return nil, nil
	}
	nc, js, err := a.connect(ctx, schema.RoleIndexer, "natter-indexer")
	if err != nil {
		return nil, err
	}
	idx, closeIdx, err := OpenSearch(ctx, a.cfg.Search)
	if err != nil {
		return nil, err
	}
	api, err := search.StartAPI(nc, idx, 10*time.Second)
	if err != nil {
		if closeIdx != nil {
			_ = closeIdx()
		}
		return nil, err
	}
	// Requests may come as soon as Start returns: the server has the
	// API's subscriptions before.
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		_ = api.Stop()
		if closeIdx != nil {
			_ = closeIdx()
		}
		return nil, fmt.Errorf("start search API: %w", err)
	}
	icfg := a.cfg.Search.Indexer
	if icfg.Logger == nil {
		icfg.Logger = a.log
	}
	if s := a.cfg.Search; s.Index == nil && s.OpenSearch == nil {
		// An embedded index: one indexer per cluster, or two processes
		// would each hold part of the messages.
		icfg.SingleIndexer = search.IndexName(s.Dir)
	}
	ix := search.NewIndexer(icfg, js, idx)
	if err := ix.Claim(ctx); err != nil {
		_ = api.Stop()
		if closeIdx != nil {
			_ = closeIdx()
		}
		return nil, err
	}
	a.indexer = ix
	return &part{name: "indexer", run: ix.Run, close: func() error {
		err := api.Stop()
		if closeIdx != nil {
			err = errors.Join(err, closeIdx())
		}
		return err
	}}, nil
}

// Indexer is the search indexer, nil when this process runs none.
func (a *App) Indexer() *search.Indexer { return a.indexer }

// gatewaySearch adapts the search API's client to gateway.Searcher.
type gatewaySearch struct{ r *search.Remote }

func (g gatewaySearch) Search(ctx context.Context, query string, convs []string, cursor string, limit int) ([]protocol.SearchHit, string, error) {
	resp, err := g.r.Search(ctx, search.APIRequest{Query: query, Convs: convs, Cursor: cursor, Limit: limit})
	switch {
	case errors.Is(err, search.ErrBadCursor):
		return nil, "", fmt.Errorf("%w: bad cursor", gateway.ErrBadRequest)
	case errors.Is(err, search.ErrBadQuery):
		return nil, "", fmt.Errorf("%w: %v", gateway.ErrBadRequest, err)
	case err != nil:
		return nil, "", err
	}
	return resp.Hits, resp.Cursor, nil
}
