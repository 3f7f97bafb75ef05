package gateway

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// A sender has read its own message: a send moves the sender's read
// marker to it. Writing that marker on every send would be a second
// stream write per message, so the gateway only notes it (ownMarks.owe)
// and writes the furthest seq per user and conversation once per
// Config.OwnMarkerDelay. Before it answers anything that reads or moves a
// marker of that user (read, conversations) it writes what is owed for
// them first, so the answer is as if every send had written its marker.
// Shutdown writes everything owed.

// markFlushers bounds the marker writes of one flush in flight at once.
const markFlushers = 8

// maxOwed is how many (user, conversation) markers may be owed before a
// flush starts early.
const maxOwed = 100_000

// ownMarks holds the sender markers not yet written.
type ownMarks struct {
	srv  *Server
	mu   sync.Mutex
	owed map[string]map[string]uint64 // uid → conv → seq
	n    int                          // entries in owed
	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func newOwnMarks(s *Server) *ownMarks {
	o := &ownMarks{srv: s, owed: make(map[string]map[string]uint64), kick: make(chan struct{}, 1), done: make(chan struct{})}
	o.wg.Add(1)
	go o.run()
	return o
}

// owe notes that uid sent seq in conv.
func (o *ownMarks) owe(uid, conv string, seq uint64) {
	o.mu.Lock()
	convs := o.owed[uid]
	if convs == nil {
		convs = make(map[string]uint64, 1)
		o.owed[uid] = convs
	}
	old, ok := convs[conv]
	if !ok {
		o.n++
	}
	if seq > old {
		convs[conv] = seq
	}
	full := o.n >= maxOwed
	o.mu.Unlock()
	if full {
		select {
		case o.kick <- struct{}{}:
		default:
		}
	}
}

// settle writes what uid owes in conv, or in every conversation when conv
// is "".
func (o *ownMarks) settle(ctx context.Context, uid, conv string) error {
	o.mu.Lock()
	convs := o.owed[uid]
	var take map[string]uint64
	switch {
	case len(convs) == 0:
	case conv == "":
		take = convs
		delete(o.owed, uid)
		o.n -= len(convs)
	default:
		if seq, ok := convs[conv]; ok {
			take = map[string]uint64{conv: seq}
			delete(convs, conv)
			o.n--
			if len(convs) == 0 {
				delete(o.owed, uid)
			}
		}
	}
	o.mu.Unlock()
	if len(take) == 0 {
		return nil
	}
	return o.write(ctx, map[string]map[string]uint64{uid: take})
}

// write moves the markers in owed, some at once. A marker that could not
// be written is owed again, unless a later send already owes a further
// one.
func (o *ownMarks) write(ctx context.Context, owed map[string]map[string]uint64) error {
	var g errgroup.Group
	g.SetLimit(markFlushers)
	for uid, convs := range owed {
		for conv, seq := range convs {
			g.Go(func() error {
				if _, err := o.srv.markers.MarkRead(ctx, conv, uid, seq); err != nil {
					o.srv.cfg.Logger.Warn("sender's read marker not moved", "user", uid, "conv", conv, "err", err)
					o.owe(uid, conv, seq)
					return err
				}
				return nil
			})
		}
	}
	return g.Wait()
}

// flush writes everything owed.
func (o *ownMarks) flush(ctx context.Context) {
	o.mu.Lock()
	owed := o.owed
	o.owed = make(map[string]map[string]uint64)
	o.n = 0
	o.mu.Unlock()
	if len(owed) > 0 {
		_ = o.write(ctx, owed)
	}
}

func (o *ownMarks) run() {
	defer o.wg.Done()
	t := time.NewTicker(o.srv.cfg.OwnMarkerDelay)
	defer t.Stop()
	for {
		select {
		case <-o.done:
			return
		case <-t.C:
		case <-o.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), o.srv.cfg.RequestTimeout)
		o.flush(ctx)
		cancel()
	}
}

// close stops the flushes and writes what is still owed.
func (o *ownMarks) close(ctx context.Context) {
	o.once.Do(func() {
		close(o.done)
		o.wg.Wait()
		o.flush(ctx)
	})
}
