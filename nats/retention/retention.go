// Package retention trims the CHAT stream. The stream has no MaxAge: a
// message leaves it only once the history store has it (the history
// consumer's ack floor is past it), the search index has it (the search
// consumer's ack floor is past it, once an indexer has ever read that
// consumer) and it is older than the hot window
// (schema.MetaHotWindow in the stream's metadata). So a history store that
// is down longer than the window loses nothing; the stream grows instead,
// and the trimmer reports by how much (State.Held, State.HistoryLag) so an
// alert fires long before the disk fills.
//
// Purging is the operator's right, not a role's: the trimmer runs in the
// processes that hold the operator's credentials, natter serve's embedded
// server and every natter nats node. A purge by sequence is idempotent,
// so several trimmers on one stream are harmless.
package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
)

// Defaults of Config.
const (
	DefaultInterval = time.Minute
	DefaultWindow   = 7 * 24 * time.Hour
	// minInterval keeps a tiny window (tests) from spinning.
	minInterval = 100 * time.Millisecond
	// passTimeout bounds one pass: a request to a stream without a leader
	// (a failover) gets no answer at all.
	passTimeout = 30 * time.Second
)

// Config configures a Trimmer. The zero value is usable.
type Config struct {
	// Interval between passes, DefaultInterval when 0. A pass runs at
	// least four times per hot window, so a short window is kept closely.
	Interval time.Duration
	// Window is the hot window used when the stream's metadata names none
	// (a stream made by an older release), DefaultWindow when 0.
	Window time.Duration
	// Logger, slog.Default when nil.
	Logger *slog.Logger
	// Now is the clock, time.Now when nil.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// State is what one pass saw and did.
type State struct {
	// At is when the pass ran.
	At time.Time
	// Window is the hot window it applied.
	Window time.Duration
	// Stored is the history consumer's ack floor: the store has every
	// message up to this stream seq.
	Stored uint64
	// Search reports whether the search consumer holds messages too: an
	// indexer has read it (it delivered something). A search consumer no
	// indexer ever read (search is off) holds nothing.
	Search bool
	// Indexed is the search consumer's ack floor when Search: the index
	// has every message up to this stream seq.
	Indexed uint64
	// FirstSeq is the stream's first seq after the pass.
	FirstSeq uint64
	// Purged is how many seqs the pass removed.
	Purged uint64
	// Held is how many seqs older than the window the stream keeps because
	// the history store or the search index lacks them.
	Held uint64
	// HistoryLag is the age of the oldest message the history store lacks,
	// 0 when it has everything.
	HistoryLag time.Duration
	// When the messages are in several partition streams (schema.Layout)
	// a pass trims each: Purged and Held are their sums, HistoryLag their
	// largest, Search whether any has a search consumer in use, and
	// Stored, FirstSeq and Indexed, seqs of one stream, are 0.
}

// Stats are a Trimmer's totals since it started, for /metrics.
type Stats struct {
	// Last is the last pass that succeeded (zero before the first).
	Last State
	// Purged counts the seqs removed by every pass.
	Purged uint64
	// Errors counts the passes that failed.
	Errors uint64
}

// Trimmer purges the CHAT stream below what the history store has and the
// hot window allows.
type Trimmer struct {
	cfg Config
	js  jetstream.JetStream

	mu    sync.Mutex
	stats Stats
}

// New returns a Trimmer over js, which must be allowed to purge CHAT (the
// operator's user).
func New(cfg Config, js jetstream.JetStream) *Trimmer {
	return &Trimmer{cfg: cfg.withDefaults(), js: js}
}

// Stats returns the totals so far.
func (t *Trimmer) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// Run trims every interval until ctx ends, then returns nil. A failed pass
// is logged and counted, and the next one tries again.
func (t *Trimmer) Run(ctx context.Context) error {
	wait := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		st, err := t.Trim(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			t.cfg.Logger.Warn("retention: trimming CHAT failed; retrying", "err", err)
		case st.Held > 0:
			t.cfg.Logger.Warn("retention: CHAT keeps messages older than the hot window because the history store or the search index lacks them",
				"held", st.Held, "history_lag", st.HistoryLag.Round(time.Second), "stored", st.Stored, "indexed", st.Indexed, "search", st.Search, "hot_window", st.Window)
		}
		wait = t.interval(st.Window)
	}
}

// interval is the pause before the next pass.
func (t *Trimmer) interval(window time.Duration) time.Duration {
	d := t.cfg.Interval
	if window > 0 {
		d = min(d, window/4)
	}
	return max(d, minInterval)
}

// Trim runs one pass: it purges CHAT below min(history ack floor + 1,
// first seq younger than the hot window) and measures the history lag.
func (t *Trimmer) Trim(ctx context.Context) (State, error) {
	ctx, cancel := context.WithTimeout(ctx, passTimeout)
	defer cancel()
	st, err := t.trim(ctx)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.stats.Errors++
		return st, err
	}
	t.stats.Last = st
	t.stats.Purged += st.Purged
	return st, nil
}

func (t *Trimmer) trim(ctx context.Context) (State, error) {
	now := t.cfg.Now()
	l, err := schema.ReadLayout(ctx, t.js)
	if err != nil {
		return State{At: now, Window: t.cfg.Window}, fmt.Errorf("retention: %w", err)
	}
	if !l.Split() {
		return t.trimStream(ctx, schema.StreamChat, now)
	}
	// Each partition stream on its own: its seqs, its writer's floor.
	all := State{At: now, Window: t.cfg.Window}
	var errs []error
	for _, name := range l.ChatStreams() {
		st, err := t.trimStream(ctx, name, now)
		if err != nil {
			errs = append(errs, err)
		}
		all.Window = st.Window
		all.Purged += st.Purged
		all.Held += st.Held
		all.HistoryLag = max(all.HistoryLag, st.HistoryLag)
		all.Search = all.Search || st.Search
	}
	return all, errors.Join(errs...)
}

// trimStream is one pass over the message stream name.
func (t *Trimmer) trimStream(ctx context.Context, name string, now time.Time) (State, error) {
	st := State{At: now, Window: t.cfg.Window}
	stream, err := t.js.Stream(ctx, name)
	if err != nil {
		return st, fmt.Errorf("retention: stream %s: %w", name, err)
	}
	info := stream.CachedInfo()
	if w, ok := schema.HotWindowOf(info.Config); ok {
		st.Window = w
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	st.FirstSeq = first
	cons, err := t.js.Consumer(ctx, name, schema.ConsumerHistory)
	if err != nil {
		// Without the history consumer nothing says what the store has:
		// keep everything.
		return st, fmt.Errorf("retention: consumer %s on %s: %w", schema.ConsumerHistory, name, err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("retention: consumer %s: %w", schema.ConsumerHistory, err)
	}
	st.Stored = ci.AckFloor.Stream
	if st.HistoryLag, err = t.lag(ctx, stream, st.Stored+1, now); err != nil {
		return st, err
	}
	floor := st.Stored
	if st.Search, st.Indexed, err = t.indexed(ctx, name); err != nil {
		return st, err
	}
	if st.Search {
		floor = min(floor, st.Indexed)
	}
	if info.State.Msgs == 0 {
		return st, nil
	}
	cut, err := t.firstSince(ctx, name, now.Add(-st.Window), last)
	if err != nil {
		return st, err
	}
	keep := min(floor+1, cut)
	if cut > keep {
		st.Held = cut - max(keep, first)
	}
	if keep <= first {
		return st, nil
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSequence(keep)); err != nil {
		return st, fmt.Errorf("retention: purge %s below %d: %w", name, keep, err)
	}
	st.Purged, st.FirstSeq = keep-first, keep
	return st, nil
}

// indexed reads the search consumer's ack floor on stream; used reports whether an
// indexer ever read the consumer (it delivered something), without which
// the floor holds nothing back: search is off. A missing consumer is
// search off too (a stream made before search; Ensure adds it).
func (t *Trimmer) indexed(ctx context.Context, stream string) (used bool, floor uint64, err error) {
	cons, err := t.js.Consumer(ctx, stream, schema.ConsumerSearch)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return false, 0, nil
	}
	if err != nil {
		// Unknown: keep everything rather than purge what the index lacks.
		return false, 0, fmt.Errorf("retention: consumer %s: %w", schema.ConsumerSearch, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return false, 0, fmt.Errorf("retention: consumer %s: %w", schema.ConsumerSearch, err)
	}
	// The consumer sequence counts deliveries only; a purge moves the
	// stream floors of a consumer nobody reads.
	return info.Delivered.Consumer > 0, info.AckFloor.Stream, nil
}

// lag is the age of the first message at or after seq that the history
// writer copies, 0 when there is none.
func (t *Trimmer) lag(ctx context.Context, stream jetstream.Stream, seq uint64, now time.Time) (time.Duration, error) {
	m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(schema.StoredMsgWildcard))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("retention: oldest message the store lacks: %w", err)
	}
	return max(now.Sub(m.Time), 0), nil
}

// msgGetRequest asks for the first message stored at or after StartTime.
// nats.go's GetMsg has no time option, so the trimmer speaks the API.
type msgGetRequest struct {
	StartTime time.Time `json:"start_time"`
}

type msgGetResponse struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
	Message *struct {
		Seq uint64 `json:"seq"`
	} `json:"message"`
}

// firstSince is the seq of the first message stored at or after since,
// last+1 when every message is older.
func (t *Trimmer) firstSince(ctx context.Context, stream string, since time.Time, last uint64) (uint64, error) {
	req, err := json.Marshal(msgGetRequest{StartTime: since.UTC()})
	if err != nil {
		return 0, err
	}
	msg, err := t.js.Conn().RequestWithContext(ctx, schema.MsgGetAPI(stream), req)
	if err != nil {
		return 0, fmt.Errorf("retention: first message since %s: %w", since.Format(time.RFC3339), err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, fmt.Errorf("retention: first message since %s: %w", since.Format(time.RFC3339), err)
	}
	switch {
	case resp.Error != nil && resp.Error.Code == 404:
		return last + 1, nil
	case resp.Error != nil:
		return 0, fmt.Errorf("retention: first message since %s: %s (%d)", since.Format(time.RFC3339), resp.Error.Description, resp.Error.ErrCode)
	case resp.Message == nil:
		return 0, fmt.Errorf("retention: first message since %s: empty answer", since.Format(time.RFC3339))
	}
	return resp.Message.Seq, nil
}
