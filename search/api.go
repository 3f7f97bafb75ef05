package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// APIRequest is a query on chat.api.search.query. The API does no
// membership checks: the caller (the gateway) names the conversations.
type APIRequest struct {
	Query  string   `json:"query"`
	Convs  []string `json:"convs"`
	Cursor string   `json:"cursor,omitempty"`
	Limit  int      `json:"limit,omitempty"`
}

// APIResponse answers an APIRequest.
type APIResponse struct {
	Hits   []protocol.SearchHit `json:"hits"`
	Cursor string               `json:"cursor,omitempty"`
}

// MaxConvs bounds the conversations one query names.
const MaxConvs = 10_000

// StartAPI serves idx on chat.api.search.query as the NATS micro service
// "search"; every instance joins one queue group.
func StartAPI(nc *nats.Conn, idx Index, timeout time.Duration) (micro.Service, error) {
	svc, err := micro.AddService(nc, micro.Config{
		Name:        schema.SearchService,
		Version:     "1.0.0",
		Description: "Natter full-text search over the messages of the conversations a request names",
	})
	if err != nil {
		return nil, fmt.Errorf("start search API: %w", err)
	}
	err = svc.AddGroup(schema.SearchAPIGroup).AddEndpoint(schema.SearchEndpointQuery, micro.HandlerFunc(func(r micro.Request) {
		var req APIRequest
		if err := json.Unmarshal(r.Data(), &req); err != nil || checkRequest(&req) != nil {
			_ = r.Error("400", "request must be JSON with a query of at most 256 bytes and at most 10000 valid conversation ids", nil)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		p, err := idx.Search(ctx, Query{Text: req.Query, Convs: req.Convs, Cursor: req.Cursor, Limit: req.Limit})
		switch {
		case errors.Is(err, ErrBadCursor):
			_ = r.Error("400", "bad cursor", nil)
			return
		case err != nil:
			_ = r.Error("500", err.Error(), nil)
			return
		}
		resp := APIResponse{Hits: make([]protocol.SearchHit, len(p.Hits)), Cursor: p.Cursor}
		for i, h := range p.Hits {
			resp.Hits[i] = protocol.SearchHit{Conv: h.Conv, Seq: h.Seq, Sender: h.Sender, TS: h.TS, Highlights: h.Highlights}
			if resp.Hits[i].Highlights == nil {
				resp.Hits[i].Highlights = []string{}
			}
		}
		_ = r.RespondJSON(resp)
	}))
	if err == nil {
		err = addForget(svc, idx, timeout) // forget.go
	}
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("start search API: %w", err)
	}
	return svc, nil
}

func checkRequest(req *APIRequest) error {
	if len(req.Query) > protocol.MaxQueryBytes || len(req.Convs) > MaxConvs {
		return ErrBadQuery
	}
	for _, c := range req.Convs {
		if !protocol.ValidID(c) {
			return ErrBadQuery
		}
	}
	return nil
}

// Remote is a client of the search API: what gateways search with.
type Remote struct {
	nc      *nats.Conn
	timeout time.Duration
}

// NewRemote returns a client of the search API.
func NewRemote(nc *nats.Conn, timeout time.Duration) *Remote {
	return &Remote{nc: nc, timeout: timeout}
}

// Search asks the search API. A bad cursor or query is an error wrapping
// ErrBadCursor or ErrBadQuery; no indexer running is nats.ErrNoResponders.
func (r *Remote) Search(ctx context.Context, req APIRequest) (*APIResponse, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	msg, err := r.nc.RequestWithContext(ctx, schema.SearchAPI(schema.SearchEndpointQuery), data)
	if err != nil {
		return nil, fmt.Errorf("search API: %w", err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		desc := msg.Header.Get(micro.ErrorHeader)
		if code == "400" {
			if desc == "bad cursor" {
				return nil, ErrBadCursor
			}
			return nil, fmt.Errorf("%w: %s", ErrBadQuery, desc)
		}
		return nil, fmt.Errorf("search API: %s %s", code, desc)
	}
	var resp APIResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("search API: %w", err)
	}
	return &resp, nil
}
