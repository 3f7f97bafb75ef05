package services

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
)

// Index is an in-memory copy of the registry, kept current by a watch of
// the SERVICES bucket: lookups take a read lock and no I/O.
type Index struct {
	log      *slog.Logger
	onChange func([]Service)

	mu       sync.RWMutex
	byName   map[string]*Service
	bySender map[string]string // sender -> service name

	done chan struct{}
	err  error
}

// WatchConfig configures Watch.
type WatchConfig struct {
	// OnChange, when set, is called with every service (by name) once the
	// initial values are loaded (before Watch returns) and after every
	// change after that, from the watch goroutine, one call at a time.
	OnChange func([]Service)
	// Logger gets records that do not decode; nil discards.
	Logger *slog.Logger
}

// Watch loads the registry from js's SERVICES bucket and keeps the Index
// current until ctx ends; it returns once the initial values are in. Done
// is closed when the watch has stopped.
func Watch(ctx context.Context, js jetstream.JetStream, cfg WatchConfig) (*Index, error) {
	kv, err := js.KeyValue(ctx, schema.BucketServices)
	if err != nil {
		return nil, fmt.Errorf("services: open bucket %s: %w", schema.BucketServices, err)
	}
	x := &Index{log: cfg.Logger, onChange: cfg.OnChange, byName: map[string]*Service{}, bySender: map[string]string{}, done: make(chan struct{})}
	if x.log == nil {
		x.log = slog.New(slog.DiscardHandler)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("services: watch: %w", err)
	}
	ready := make(chan struct{})
	go x.run(ctx, w, ready)
	select {
	case <-ready:
		return x, nil
	case <-x.done:
		return nil, fmt.Errorf("services: watch: %w", x.err)
	case <-ctx.Done():
		<-x.done
		return nil, fmt.Errorf("services: watch: %w", ctx.Err())
	}
}

func (x *Index) run(ctx context.Context, w jetstream.KeyWatcher, ready chan struct{}) {
	defer close(x.done)
	defer func() { _ = w.Stop() }()
	loaded := false
	for {
		select {
		case <-ctx.Done():
			x.err = ctx.Err()
			return
		case e, ok := <-w.Updates():
			if !ok {
				x.err = fmt.Errorf("watcher closed")
				return
			}
			if e == nil { // the initial values are in
				if !loaded {
					loaded = true
					x.changed() // before Watch returns: the first OnChange is done then
					close(ready)
				}
				continue
			}
			x.apply(e)
			if loaded {
				x.changed()
			}
		}
	}
}

func (x *Index) apply(e jetstream.KeyValueEntry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.byName[e.Key()]; ok {
		for _, u := range old.Senders {
			if x.bySender[u] == old.Name {
				delete(x.bySender, u)
			}
		}
		delete(x.byName, e.Key())
	}
	if e.Operation() != jetstream.KeyValuePut {
		return
	}
	s, err := decode(e.Value())
	if err != nil || s.Name != e.Key() {
		x.log.Warn("Service record ignored.", "service", e.Key(), "err", err)
		return
	}
	x.byName[s.Name] = s
	for _, u := range s.Senders {
		if _, taken := x.bySender[u]; !taken {
			x.bySender[u] = s.Name
		}
	}
}

func (x *Index) changed() {
	if x.onChange != nil {
		x.onChange(x.Services())
	}
}

// Allowed reports whether service name may post as sender.
func (x *Index) Allowed(name, sender string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	s, ok := x.byName[name]
	return ok && s.Allowed(sender)
}

// ServiceOf returns the service that may post as sender, if any.
func (x *Index) ServiceOf(sender string) (name string, ok bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	name, ok = x.bySender[sender]
	return name, ok
}

// Get returns a copy of service name's record.
func (x *Index) Get(name string) (Service, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	s, ok := x.byName[name]
	if !ok {
		return Service{}, false
	}
	return *s, true
}

// Services returns a copy of every record, by name.
func (x *Index) Services() []Service {
	x.mu.RLock()
	out := make([]Service, 0, len(x.byName))
	for _, s := range x.byName {
		out = append(out, *s)
	}
	x.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Done is closed once the watch has stopped (its context ended).
func (x *Index) Done() <-chan struct{} { return x.done }
