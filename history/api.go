package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// APIPrefix is the subject group of the history request/reply API:
// chat.api.history.<op>. It is for internal services and gateways; it does
// no membership checks (the gateway does them for clients).
const APIPrefix = schema.HistoryAPIGroup

// APIRequest asks for a page or a figure of one conversation.
type APIRequest struct {
	Conv   string `json:"conv"`
	After  uint64 `json:"after,omitempty"`
	Before uint64 `json:"before,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	// Thread is the root of the thread thread_after and thread_before page.
	Thread uint64 `json:"thread,omitempty"`
}

// APIResponse answers an APIRequest.
type APIResponse struct {
	Messages []*protocol.Message `json:"messages,omitempty"`
	More     bool                `json:"more,omitempty"`
	Seq      uint64              `json:"seq,omitempty"`
	Count    uint64              `json:"count,omitempty"`
	Message  *protocol.Message   `json:"message,omitempty"`
}

// Pages is what the API serves: the Reader. Rows of After and Before
// carry Prev (protocol.Message); Get's row does not.
type Pages interface {
	After(ctx context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error)
	Before(ctx context.Context, conv string, before uint64, limit int) ([]*protocol.Message, bool, error)
	Last(ctx context.Context, conv string) (uint64, error)
	Get(ctx context.Context, conv string, seq uint64) (*protocol.Message, error)
	CountAfter(ctx context.Context, conv string, after uint64, limit int) (uint64, error)
	ThreadAfter(ctx context.Context, conv string, root, after uint64, limit int) ([]*protocol.Message, bool, error)
	ThreadBefore(ctx context.Context, conv string, root, before uint64, limit int) ([]*protocol.Message, bool, error)
}

var (
	_ Pages = (*Reader)(nil)
	_ Pages = (*Remote)(nil)
)

// StartAPI serves pages on
// chat.api.history.{after,before,last,get,count,thread_after,thread_before}
// as a NATS micro service named "history": `nats micro ls` lists it and
// `nats micro stats history` shows its traffic. Every instance joins one
// queue group, so requests spread over the history services running.
func StartAPI(nc *nats.Conn, pages Pages, timeout time.Duration) (micro.Service, error) {
	svc, err := micro.AddService(nc, micro.Config{
		Name:        schema.HistoryService,
		Version:     "1.0.0",
		Description: "Natter conversation history: pages from the history store and the CHAT stream",
	})
	if err != nil {
		return nil, fmt.Errorf("start history API: %w", err)
	}
	g := svc.AddGroup(APIPrefix)
	handle := func(name string, fn func(context.Context, *APIRequest) (*APIResponse, error)) error {
		return g.AddEndpoint(name, micro.HandlerFunc(func(r micro.Request) {
			var req APIRequest
			if err := json.Unmarshal(r.Data(), &req); err != nil || !protocol.ValidID(req.Conv) {
				_ = r.Error("400", "request must be JSON with a valid conv", nil)
				return
			}
			if req.Limit <= 0 || req.Limit > protocol.MaxLimit {
				req.Limit = min(max(req.Limit, protocol.DefaultLimit), protocol.MaxLimit)
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			resp, err := fn(ctx, &req)
			switch {
			case errors.Is(err, ErrNotFound):
				_ = r.Error("404", "no such message", nil)
			case err != nil:
				_ = r.Error("500", err.Error(), nil)
			default:
				buf := replyBufs.Get().(*[]byte)
				*buf = appendAPIResponse((*buf)[:0], resp)
				_ = r.Respond(*buf) // written to the connection's buffer: buf is free again
				if cap(*buf) <= maxPooledReply {
					replyBufs.Put(buf)
				}
			}
		}))
	}
	err = errors.Join(
		handle("after", func(ctx context.Context, q *APIRequest) (*APIResponse, error) {
			m, more, err := pages.After(ctx, q.Conv, q.After, q.Limit)
			return &APIResponse{Messages: m, More: more}, err
		}),
		handle("before", func(ctx context.Context, q *APIRequest) (*APIResponse, error) {
			m, more, err := pages.Before(ctx, q.Conv, q.Before, q.Limit)
			return &APIResponse{Messages: m, More: more}, err
		}),
		handle("last", func(ctx context.Context, q *APIRequest) (*APIResponse, error) {
			seq, err := pages.Last(ctx, q.Conv)
			return &APIResponse{Seq: seq}, err
		}),
		handle("get", func(ctx context.Context, q *APIRequest) (*APIResponse, error) {
			m, err := pages.Get(ctx, q.Conv, q.Seq)
			return &APIResponse{Message: m}, err
		}),
		handle("count", func(ctx context.Context, q *APIRequest) (*APIResponse, error) {
			// Limit doubles as the saturation point here, up to 10,000.
			n, err := pages.CountAfter(ctx, q.Conv, q.After, max(q.Limit, tailCap))
			return &APIResponse{Count: n}, err
		}),
		handle("thread_after", func(ctx context.Context, q *APIRequest) (*APIResponse, error) {
			m, more, err := pages.ThreadAfter(ctx, q.Conv, q.Thread, q.After, q.Limit)
			return &APIResponse{Messages: m, More: more}, err
		}),
		handle("thread_before", func(ctx context.Context, q *APIRequest) (*APIResponse, error) {
			m, more, err := pages.ThreadBefore(ctx, q.Conv, q.Thread, q.Before, q.Limit)
			return &APIResponse{Messages: m, More: more}, err
		}),
	)
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("start history API: %w", err)
	}
	return svc, nil
}

// replyBufs keeps the buffers replies are encoded into; one grown past
// maxPooledReply (a page of large messages) is left to the collector.
var replyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxPooledReply = 1 << 20

// appendAPIResponse appends resp encoded as JSON, as json.Marshal would
// encode it but for HTML characters, which it leaves unescaped: the
// messages with protocol.AppendMessage, without encoding/json.
func appendAPIResponse(dst []byte, resp *APIResponse) []byte {
	dst = append(dst, '{')
	comma := func() {
		if len(dst) > 0 && dst[len(dst)-1] != '{' {
			dst = append(dst, ',')
		}
	}
	if len(resp.Messages) > 0 {
		dst = append(dst, `"messages":[`...)
		for i, m := range resp.Messages {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = protocol.AppendMessage(dst, m)
		}
		dst = append(dst, ']')
	}
	if resp.More {
		comma()
		dst = append(dst, `"more":true`...)
	}
	if resp.Seq != 0 {
		comma()
		dst = append(dst, `"seq":`...)
		dst = strconv.AppendUint(dst, resp.Seq, 10)
	}
	if resp.Count != 0 {
		comma()
		dst = append(dst, `"count":`...)
		dst = strconv.AppendUint(dst, resp.Count, 10)
	}
	if resp.Message != nil {
		comma()
		dst = append(dst, `"message":`...)
		dst = protocol.AppendMessage(dst, resp.Message)
	}
	return append(dst, '}')
}

// Remote reads pages through the history API, for gateways that do not
// hold the store themselves.
type Remote struct {
	nc      *nats.Conn
	timeout time.Duration
}

// NewRemote returns a client of the history API.
func NewRemote(nc *nats.Conn, timeout time.Duration) *Remote {
	return &Remote{nc: nc, timeout: timeout}
}

func (r *Remote) call(ctx context.Context, op string, req *APIRequest) (*APIResponse, error) {
	data, _ := json.Marshal(req)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	msg, err := r.nc.RequestWithContext(ctx, schema.HistoryAPI(op), data)
	if err != nil {
		return nil, fmt.Errorf("history API %s: %w", op, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		if code == "404" {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("history API %s: %s %s", op, code, msg.Header.Get(micro.ErrorHeader))
	}
	var resp APIResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("history API %s: %w", op, err)
	}
	return &resp, nil
}

// After implements Pages.
func (r *Remote) After(ctx context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error) {
	resp, err := r.call(ctx, "after", &APIRequest{Conv: conv, After: after, Limit: limit})
	if err != nil {
		return nil, false, err
	}
	return resp.Messages, resp.More, nil
}

// Before implements Pages.
func (r *Remote) Before(ctx context.Context, conv string, before uint64, limit int) ([]*protocol.Message, bool, error) {
	resp, err := r.call(ctx, "before", &APIRequest{Conv: conv, Before: before, Limit: limit})
	if err != nil {
		return nil, false, err
	}
	return resp.Messages, resp.More, nil
}

// Last implements Pages.
func (r *Remote) Last(ctx context.Context, conv string) (uint64, error) {
	resp, err := r.call(ctx, "last", &APIRequest{Conv: conv})
	if err != nil {
		return 0, err
	}
	return resp.Seq, nil
}

// Get implements Pages.
func (r *Remote) Get(ctx context.Context, conv string, seq uint64) (*protocol.Message, error) {
	resp, err := r.call(ctx, "get", &APIRequest{Conv: conv, Seq: seq})
	if err != nil {
		return nil, err
	}
	if resp.Message == nil {
		return nil, ErrNotFound
	}
	return resp.Message, nil
}

// CountAfter implements Pages.
func (r *Remote) CountAfter(ctx context.Context, conv string, after uint64, limit int) (uint64, error) {
	resp, err := r.call(ctx, "count", &APIRequest{Conv: conv, After: after, Limit: limit})
	if err != nil {
		return 0, err
	}
	return min(resp.Count, uint64(limit)), nil
}

// ThreadAfter implements Pages.
func (r *Remote) ThreadAfter(ctx context.Context, conv string, root, after uint64, limit int) ([]*protocol.Message, bool, error) {
	resp, err := r.call(ctx, "thread_after", &APIRequest{Conv: conv, Thread: root, After: after, Limit: limit})
	if err != nil {
		return nil, false, err
	}
	return resp.Messages, resp.More, nil
}

// ThreadBefore implements Pages.
func (r *Remote) ThreadBefore(ctx context.Context, conv string, root, before uint64, limit int) ([]*protocol.Message, bool, error) {
	resp, err := r.call(ctx, "thread_before", &APIRequest{Conv: conv, Thread: root, Before: before, Limit: limit})
	if err != nil {
		return nil, false, err
	}
	return resp.Messages, resp.More, nil
}
