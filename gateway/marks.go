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
// and writes the furthest seq per user and conversation once it has been
// owed for Config.OwnMarkerDelay: the sends of a conversation within it
// cost one write, and the writes are spread over time rather than made
// in bursts. Before the gateway answers anything that reads or moves a
// marker of that user (read, conversations) it writes what is owed for
// them first, so the answer is as if every send had written its marker.
// Shutdown writes everything owed.

const (
	// markFlushers bounds the marker writes in flight at once.
	markFlushers = 32
	// markTicks is how many times per OwnMarkerDelay the owed markers
	// are looked at.
	markTicks = 5
	// maxOwed is how many (user, conversation) markers may be owed
	// before all of them are written early.
	maxOwed = 100_000
)

// owedMark is a marker not yet written: seq, owed since tick.
type owedMark struct{ seq, tick uint64 }

// ownMarks holds the sender markers not yet written.
type ownMarks struct {
	srv  *Server
	mu   sync.Mutex
	owed map[string]map[string]owedMark // uid → conv → mark
	n    int                            // entries in owed
	tick uint64
	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func newOwnMarks(s *Server) *ownMarks {
	o := &ownMarks{srv: s, owed: make(map[string]map[string]owedMark), kick: make(chan struct{}, 1), done: make(chan struct{})}
	o.wg.Add(1)
	go o.run()
	return o
}

// owe notes that uid sent seq in conv.
func (o *ownMarks) owe(uid, conv string, seq uint64) {
	o.mu.Lock()
	convs := o.owed[uid]
	if convs == nil {
		convs = make(map[string]owedMark, 1)
		o.owed[uid] = convs
	}
	m, ok := convs[conv]
	if !ok {
		o.n++
		m.tick = o.tick
	}
	if seq > m.seq {
		m.seq = seq
		convs[conv] = m
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

// markWrite is one marker to write.
type markWrite struct {
	uid, conv string
	seq       uint64
}

// settle writes what uid owes in conv.
func (o *ownMarks) settle(ctx context.Context, uid, conv string) error {
	o.mu.Lock()
	m, ok := o.owed[uid][conv]
	if ok {
		o.forget(uid, conv)
	}
	o.mu.Unlock()
	if !ok {
		return nil
	}
	return o.write(ctx, []markWrite{{uid, conv, m.seq}})
}

// forget drops an entry; o.mu is held.
func (o *ownMarks) forget(uid, conv string) {
	convs := o.owed[uid]
	delete(convs, conv)
	o.n--
	if len(convs) == 0 {
		delete(o.owed, uid)
	}
}

// write moves the markers, some at once, each on a deadline of its own. A
// marker that could not be written is owed again.
func (o *ownMarks) write(ctx context.Context, marks []markWrite) error {
	var g errgroup.Group
	g.SetLimit(markFlushers)
	for _, m := range marks {
		g.Go(func() error {
			wctx, cancel := context.WithTimeout(ctx, o.srv.cfg.RequestTimeout)
			defer cancel()
			if _, err := o.srv.markers.MarkRead(wctx, m.conv, m.uid, m.seq); err != nil {
				o.srv.cfg.Logger.Warn("sender's read marker not moved", "user", m.uid, "conv", m.conv, "err", err)
				o.owe(m.uid, m.conv, m.seq)
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

// flush writes the markers owed for OwnMarkerDelay, or all of them.
func (o *ownMarks) flush(ctx context.Context, all bool) {
	o.mu.Lock()
	var due []markWrite
	for uid, convs := range o.owed {
		for conv, m := range convs {
			if all || o.tick-m.tick >= markTicks {
				due = append(due, markWrite{uid, conv, m.seq})
				o.forget(uid, conv)
			}
		}
	}
	o.tick++
	o.mu.Unlock()
	if len(due) > 0 {
		_ = o.write(ctx, due)
	}
}

func (o *ownMarks) run() {
	defer o.wg.Done()
	t := time.NewTicker(o.srv.cfg.OwnMarkerDelay / markTicks)
	defer t.Stop()
	for {
		all := false
		select {
		case <-o.done:
			return
		case <-t.C:
		case <-o.kick:
			all = true
		}
		o.flush(context.Background(), all)
	}
}

// close stops the flushes and writes what is still owed.
func (o *ownMarks) close(ctx context.Context) {
	o.once.Do(func() {
		close(o.done)
		o.wg.Wait()
		o.flush(ctx, true)
	})
}
