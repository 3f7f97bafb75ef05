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

// ForgetRequest asks the indexer to remove messages of one conversation
// from the index: those a conversation's retention dropped everywhere
// else (services/erase/retain.go). Keys not indexed are no error.
type ForgetRequest struct {
	Conv string   `json:"conv"`
	Seqs []uint64 `json:"seqs"`
}

// MaxForget bounds the seqs of one ForgetRequest.
const MaxForget = 10_000

// addForget serves ForgetRequests on schema.SearchForget(), in the
// admin group gateways may not publish to.
func addForget(svc micro.Service, idx Index, timeout time.Duration) error {
	return svc.AddGroup(schema.SearchAdminGroup).AddEndpoint(schema.SearchEndpointForget, micro.HandlerFunc(func(r micro.Request) {
		var req ForgetRequest
		if err := json.Unmarshal(r.Data(), &req); err != nil || !protocol.ValidID(req.Conv) || len(req.Seqs) > MaxForget {
			_ = r.Error("400", "request must be JSON with a valid conv and at most 10000 seqs", nil)
			return
		}
		del := make([]Key, len(req.Seqs))
		for i, seq := range req.Seqs {
			del[i] = Key{Conv: req.Conv, Seq: seq}
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := idx.Write(ctx, nil, del); err != nil {
			_ = r.Error("500", err.Error(), nil)
			return
		}
		_ = r.Respond([]byte(`{}`))
	}))
}

// ErrNoIndexer: no indexer answers (search is off).
var ErrNoIndexer = errors.New("search: no indexer answers")

// Forget asks an indexer to remove seqs of conv from the index, in
// requests of at most MaxForget seqs; ErrNoIndexer when none runs.
func (r *Remote) Forget(ctx context.Context, conv string, seqs []uint64) error {
	for len(seqs) > 0 {
		n := min(len(seqs), MaxForget)
		if err := r.forget(ctx, ForgetRequest{Conv: conv, Seqs: seqs[:n]}); err != nil {
			return err
		}
		seqs = seqs[n:]
	}
	return nil
}

func (r *Remote) forget(ctx context.Context, req ForgetRequest) error {
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	msg, err := r.nc.RequestWithContext(ctx, schema.SearchForget(), data)
	if errors.Is(err, nats.ErrNoResponders) {
		return ErrNoIndexer
	}
	if err != nil {
		return fmt.Errorf("search forget: %w", err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return fmt.Errorf("search forget: %s %s", code, msg.Header.Get(micro.ErrorHeader))
	}
	return nil
}
