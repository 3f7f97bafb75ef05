package gateway

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// A sender has read its own message: a send moves the sender's read
// marker to it. Writing that marker on every send would be a second
// stream write per message, so the gateway only notes it (markQueue.owe)
// and writes the furthest seq per user and conversation once it has been
// owed for Config.OwnMarkerDelay: the sends of a conversation within it
// cost one write, and the writes are spread over time rather than made
// in bursts. Before the gateway answers anything that reads or moves a
// marker of that user (read, conversations) it writes what is owed for
// them first, so the answer is as if every send had written its marker.
// Shutdown writes everything owed. Delivered markers (delivered.go) are
// coalesced the same way, over Config.DeliveredDelay, by a queue of their
// own.

const (
	// markFlushers bounds the marker writes in flight at once.
	markFlushers = 32
	// markTicks is how many times per delay the owed markers
	// are looked at.
	markTicks = 5
	// maxOwed is how many (user, conversation) markers may be owed
	// before all of them are written early.
	maxOwed = 100_000
)

// owedMark is a marker not yet written: seq, owed since tick, and the
// block list its notice, if any, spares.
type owedMark struct {
	seq, tick uint64
	except    []string
}

// markQueue holds markers not yet written, and writes each with move
// once it has been owed for delay.
type markQueue struct {
	srv   *Server
	delay time.Duration
	move  func(ctx context.Context, m markWrite) error
	mu    sync.Mutex
	owed  map[string]map[string]owedMark // uid → conv → mark
	n     int                            // entries in owed
	tick  uint64
	kick  chan struct{}
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// newOwnMarks returns the queue of senders' read markers.
func newOwnMarks(s *Server) *markQueue {
	return newMarkQueue(s, s.cfg.OwnMarkerDelay, func(ctx context.Context, m markWrite) error {
		_, err := s.markers.MarkRead(ctx, m.conv, m.uid, m.seq)
		if err != nil {
			s.cfg.Logger.Warn("sender's read marker not moved", "user", m.uid, "conv", m.conv, "err", err)
		}
		return err
	})
}

func newMarkQueue(s *Server, delay time.Duration, move func(context.Context, markWrite) error) *markQueue {
	o := &markQueue{srv: s, delay: delay, move: move, owed: make(map[string]map[string]owedMark), kick: make(chan struct{}, 1), done: make(chan struct{})}
	o.wg.Add(1)
	go o.run()
	return o
}

// owe notes that uid sent seq in conv.
func (o *markQueue) owe(uid, conv string, seq uint64) { o.oweExcept(uid, conv, seq, nil) }

// oweExcept notes seq as uid's marker in conv, with the users its notice
// spares (the latest list wins).
func (o *markQueue) oweExcept(uid, conv string, seq uint64, except []string) {
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
		m.except = except
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
	except    []string
}

// settle writes what uid owes in conv.
func (o *markQueue) settle(ctx context.Context, uid, conv string) error {
	o.mu.Lock()
	m, ok := o.owed[uid][conv]
	if ok {
		o.forget(uid, conv)
	}
	o.mu.Unlock()
	if !ok {
		return nil
	}
	return o.write(ctx, []markWrite{{uid, conv, m.seq, m.except}})
}

// forget drops an entry; o.mu is held.
func (o *markQueue) forget(uid, conv string) {
	convs := o.owed[uid]
	delete(convs, conv)
	o.n--
	if len(convs) == 0 {
		delete(o.owed, uid)
	}
}

// write moves the markers, some at once, each on a deadline of its own. A
// marker that could not be written is owed again.
func (o *markQueue) write(ctx context.Context, marks []markWrite) error {
	var g errgroup.Group
	g.SetLimit(markFlushers)
	for _, m := range marks {
		g.Go(func() error {
			wctx, cancel := context.WithTimeout(ctx, o.srv.cfg.RequestTimeout)
			defer cancel()
			if err := o.move(wctx, m); err != nil {
				o.oweExcept(m.uid, m.conv, m.seq, m.except)
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

// flush writes the markers owed for the queue's delay, or all of them.
func (o *markQueue) flush(ctx context.Context, all bool) {
	o.mu.Lock()
	var due []markWrite
	for uid, convs := range o.owed {
		for conv, m := range convs {
			if all || o.tick-m.tick >= markTicks {
				due = append(due, markWrite{uid, conv, m.seq, m.except})
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

func (o *markQueue) run() {
	defer o.wg.Done()
	t := time.NewTicker(o.delay / markTicks)
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
func (o *markQueue) close(ctx context.Context) {
	o.once.Do(func() {
		close(o.done)
		o.wg.Wait()
		o.flush(ctx, true)
	})
}
