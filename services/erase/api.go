package erase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// APIRequest is the body of a request to chat.api.erase.<op>.
type APIRequest struct {
	User string `json:"user"`
}

// Service serves the erase API on the eraser's connection:
//   - chat.api.erase.run erases a user and answers with the Report once
//     done (natter user erase);
//   - chat.api.erase.start records the erasure, closes the user's
//     connections, answers with the record at once and erases in the
//     background (a client's delete_account).
//
// At its start it finishes, in the background, every erasure recorded
// and not done: a process that stopped in the middle of one.
type Service struct {
	e       *Eraser
	svc     micro.Service
	timeout time.Duration
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu    sync.Mutex
	users map[string]*sync.Mutex // one run per user at a time
}

// StartAPI starts the erase service; timeout bounds a run request.
func StartAPI(nc *nats.Conn, e *Eraser, timeout time.Duration) (*Service, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{e: e, timeout: timeout, ctx: ctx, cancel: cancel, users: map[string]*sync.Mutex{}}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        schema.EraseService,
		Version:     "1.0.0",
		Description: "Natter erasure of users (GDPR): natter user erase, delete_account",
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start erase API: %w", err)
	}
	g := svc.AddGroup(schema.EraseAPIGroup)
	err = errors.Join(
		g.AddEndpoint(schema.EraseEndpointRun, micro.HandlerFunc(func(r micro.Request) {
			uid, ok := userOf(r)
			if !ok {
				return
			}
			ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
			defer cancel()
			rep, err := s.run(ctx, uid)
			respond(r, rep, err)
		})),
		g.AddEndpoint(schema.EraseEndpointExport, micro.HandlerFunc(func(r micro.Request) {
			uid, ok := userOf(r)
			if !ok {
				return
			}
			ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
			defer cancel()
			res, err := e.Export(ctx, uid)
			switch {
			case errors.Is(err, ErrExportTooLarge):
				_ = r.Error("413", err.Error(), nil)
			case errors.Is(err, ErrNoExports):
				_ = r.Error("503", err.Error(), nil)
			case err != nil:
				_ = r.Error("500", err.Error(), nil)
			default:
				_ = r.RespondJSON(res)
			}
		})),
		g.AddEndpoint(schema.EraseEndpointStart, micro.HandlerFunc(func(r micro.Request) {
			uid, ok := userOf(r)
			if !ok {
				return
			}
			ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
			defer cancel()
			rep, err := e.Begin(ctx, uid)
			respond(r, rep, err)
			if err == nil && rep.State != StateDone {
				s.background(uid)
			}
		})),
	)
	if err != nil {
		_ = svc.Stop()
		cancel()
		return nil, fmt.Errorf("start erase API: %w", err)
	}
	s.svc = svc
	s.resume()
	return s, nil
}

// Stop stops serving and waits for the background erasures, which stop
// where they are (the next start finishes them).
func (s *Service) Stop() error {
	err := s.svc.Stop()
	s.cancel()
	s.wg.Wait()
	return err
}

func (s *Service) lock(uid string) func() {
	s.mu.Lock()
	m := s.users[uid]
	if m == nil {
		m = &sync.Mutex{}
		s.users[uid] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
}

func (s *Service) run(ctx context.Context, uid string) (*Report, error) {
	defer s.lock(uid)()
	return s.e.Run(ctx, uid)
}

// background runs uid's erasure until done, retrying after failures.
func (s *Service) background(uid string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for wait := time.Second; ; wait = min(2*wait, time.Minute) {
			_, err := s.run(s.ctx, uid)
			if err == nil || s.ctx.Err() != nil {
				return
			}
			s.e.cfg.Logger.Warn("erasure failed; retrying", "user", uid, "err", err, "in", wait)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}()
}

// resume finishes the erasures recorded and not done.
func (s *Service) resume() {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	l, err := s.e.convs.ListKeysFiltered(ctx, conversation.ErasedKey("*"))
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return
	}
	if err != nil {
		s.e.cfg.Logger.Warn("cannot list erasures to finish", "err", err)
		return
	}
	var users []string
	for k := range l.Keys() {
		users = append(users, strings.TrimPrefix(k, conversation.ErasedKey("")))
	}
	for _, uid := range users {
		if r, _, err := s.e.Record(ctx, uid); err == nil && r != nil && r.State != StateDone {
			s.e.cfg.Logger.Info("finishing an erasure", "user", uid, "next", r.Next, "convs", len(r.Convs))
			s.background(uid)
		}
	}
}

func userOf(r micro.Request) (string, bool) {
	var req APIRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil || !protocol.ValidID(req.User) {
		_ = r.Error("400", "request must be JSON with a valid user", nil)
		return "", false
	}
	return req.User, true
}

func respond(r micro.Request, rep *Report, err error) {
	if err != nil {
		_ = r.Error("500", err.Error(), nil)
		return
	}
	_ = r.RespondJSON(rep)
}

// RequestExport asks the erase service for uid's archive. Its errors wrap
// ErrExportTooLarge and ErrNoExports as the service answered them.
func RequestExport(ctx context.Context, nc *nats.Conn, uid string) (*ExportResult, error) {
	b, _ := json.Marshal(APIRequest{User: uid})
	msg, err := nc.RequestWithContext(ctx, schema.EraseAPI(schema.EraseEndpointExport), b)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", uid, err)
	}
	switch code := msg.Header.Get(micro.ErrorCodeHeader); code {
	case "":
	case "413":
		return nil, fmt.Errorf("%w: %s", ErrExportTooLarge, msg.Header.Get(micro.ErrorHeader))
	case "503":
		return nil, fmt.Errorf("%w: %s", ErrNoExports, msg.Header.Get(micro.ErrorHeader))
	default:
		return nil, fmt.Errorf("export %s: %s %s", uid, code, msg.Header.Get(micro.ErrorHeader))
	}
	var res ExportResult
	if err := json.Unmarshal(msg.Data, &res); err != nil {
		return nil, fmt.Errorf("export %s: decode: %w", uid, err)
	}
	return &res, nil
}

// Request asks the erase service for op (schema.EraseEndpointRun or
// EraseEndpointStart) of uid, and returns its report.
func Request(ctx context.Context, nc *nats.Conn, op, uid string) (*Report, error) {
	b, _ := json.Marshal(APIRequest{User: uid})
	msg, err := nc.RequestWithContext(ctx, schema.EraseAPI(op), b)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("erase %s: no erase service answers (it runs with the history store: natter serve or natter history): %w", uid, err)
	}
	if err != nil {
		return nil, fmt.Errorf("erase %s: %w", uid, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return nil, fmt.Errorf("erase %s: %s %s", uid, code, msg.Header.Get(micro.ErrorHeader))
	}
	var rep Report
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return nil, fmt.Errorf("erase %s: decode report: %w", uid, err)
	}
	return &rep, nil
}
