package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
)

// Consumer states in a LagReport. The thresholds are those of the alert
// rules in deploy/prometheus/natter-rules.yml: NatterFanoutBehind (1,000
// pending) and NatterHistoryBehindHotWindow (10 minutes).
const (
	StateOK = "ok"
	// StateBehind: over 1,000 messages pending, or the oldest message
	// not yet acknowledged is over 10 minutes old.
	StateBehind = "behind"
	// StatePastWindow: the oldest message not yet acknowledged is older
	// than the hot window. For the history writer, CHAT keeps what the
	// store lacks, growing; for the others, they deliver stale messages.
	StatePastWindow = "past hot window"
)

const (
	behindPending = 1000
	behindAge     = 10 * time.Minute
)

// LagReport is what `natter admin stream lag` prints.
type LagReport struct {
	Stream string `json:"stream"`
	// HotWindow is how long CHAT keeps messages at least (its metadata).
	HotWindowSeconds float64       `json:"hot_window_seconds"`
	FirstSeq         uint64        `json:"first_seq"`
	LastSeq          uint64        `json:"last_seq"`
	Messages         uint64        `json:"messages"`
	Bytes            uint64        `json:"bytes"`
	Partitions       int           `json:"partitions"`
	Consumers        []ConsumerLag `json:"consumers"`
	// Streams are the reports of the other partition streams, CHAT_1 …,
	// when the messages are in several (this one is CHAT_0's).
	Streams []*LagReport `json:"streams,omitempty"`
}

// ConsumerLag is one durable consumer of CHAT.
type ConsumerLag struct {
	Name    string   `json:"name"`
	Filters []string `json:"filters"`
	// Pending are messages not yet delivered, AckPending delivered and
	// not yet acknowledged, Redelivered delivered more than once.
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ack_pending"`
	Redelivered int    `json:"redelivered"`
	// Waiting are pull requests waiting: 0 means no process is pulling.
	Waiting int `json:"waiting"`
	// LastDelivered is the stream seq last delivered, at LastActive.
	LastDelivered uint64    `json:"last_delivered"`
	LastActive    time.Time `json:"last_active,omitzero"`
	// AckFloor is the stream seq up to which everything is acknowledged.
	AckFloor uint64 `json:"ack_floor"`
	// LagSeconds is the age of the oldest message of its filters above
	// the ack floor: how far behind the consumer's work is, 0 when it has
	// nothing outstanding. OfHotWindow is LagSeconds over the hot window.
	LagSeconds  float64 `json:"lag_seconds"`
	OfHotWindow float64 `json:"of_hot_window"`
	State       string  `json:"state"`
}

// StreamLag reports every durable consumer of CHAT (fan-out per
// partition, history, pushnotify, any other) against the hot window.
//
// With partition streams (schema.Layout) the report is CHAT_0's, and
// Streams has the others'.
func (a *Admin) StreamLag(ctx context.Context) (*LagReport, error) {
	layout, err := schema.ReadLayout(ctx, a.js)
	if err != nil {
		return nil, err
	}
	var first *LagReport
	for _, name := range layout.ChatStreams() {
		r, err := a.streamLag(ctx, name)
		if err != nil {
			return nil, err
		}
		if first == nil {
			first = r
		} else {
			first.Streams = append(first.Streams, r)
		}
	}
	return first, nil
}

// streamLag is StreamLag of one message stream.
func (a *Admin) streamLag(ctx context.Context, name string) (*LagReport, error) {
	st, err := a.js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	window, _ := schema.HotWindowOf(info.Config)
	r := &LagReport{Stream: name, HotWindowSeconds: window.Seconds(), FirstSeq: info.State.FirstSeq,
		LastSeq: info.State.LastSeq, Messages: info.State.Msgs, Bytes: info.State.Bytes,
		Partitions: schema.LayoutOf(info.Config).Partitions, Consumers: []ConsumerLag{}}
	l := st.ListConsumers(ctx)
	for ci := range l.Info() {
		c, err := a.consumerLag(ctx, st, ci, window)
		if err != nil {
			return nil, err
		}
		r.Consumers = append(r.Consumers, c)
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("consumers of %s: %w", name, err)
	}
	slices.SortFunc(r.Consumers, func(x, y ConsumerLag) int { return compareNames(x.Name, y.Name) })
	return r, nil
}

func (a *Admin) consumerLag(ctx context.Context, st jetstream.Stream, ci *jetstream.ConsumerInfo, window time.Duration) (ConsumerLag, error) {
	filters := ci.Config.FilterSubjects
	if len(filters) == 0 && ci.Config.FilterSubject != "" {
		filters = []string{ci.Config.FilterSubject}
	}
	c := ConsumerLag{Name: ci.Name, Filters: filters, Pending: ci.NumPending, AckPending: ci.NumAckPending,
		Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting, LastDelivered: ci.Delivered.Stream,
		AckFloor: ci.AckFloor.Stream, State: StateOK}
	if c.Filters == nil {
		c.Filters = []string{}
	}
	if ci.Delivered.Last != nil {
		c.LastActive = *ci.Delivered.Last
	}
	if c.Pending > 0 || c.AckPending > 0 {
		oldest, err := a.oldestAbove(ctx, st, c.AckFloor, filters)
		if err != nil {
			return c, fmt.Errorf("consumer %s: %w", ci.Name, err)
		}
		if !oldest.IsZero() {
			c.LagSeconds = max(a.cfg.Now().Sub(oldest), 0).Seconds()
		}
	}
	lag := time.Duration(c.LagSeconds * float64(time.Second))
	if window > 0 {
		c.OfHotWindow = c.LagSeconds / window.Seconds()
	}
	switch {
	case window > 0 && lag >= window:
		c.State = StatePastWindow
	case c.Pending > behindPending || lag >= behindAge:
		c.State = StateBehind
	}
	return c, nil
}

// oldestAbove is the time of the first message above seq matching any of
// filters (all when none), zero when there is none.
func (a *Admin) oldestAbove(ctx context.Context, st jetstream.Stream, seq uint64, filters []string) (time.Time, error) {
	if len(filters) == 0 {
		filters = []string{">"}
	}
	var first *jetstream.RawStreamMsg
	for _, f := range filters {
		m, err := st.GetMsg(ctx, seq+1, jetstream.WithGetMsgSubject(f))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("first message above %d on %s: %w", seq, f, err)
		}
		if first == nil || m.Sequence < first.Sequence {
			first = m
		}
	}
	if first == nil {
		return time.Time{}, nil
	}
	return first.Time, nil
}

// compareNames orders consumer names with their numbers as numbers:
// fanout-2 before fanout-10.
func compareNames(x, y string) int {
	xp, xn := splitNumber(x)
	yp, yn := splitNumber(y)
	if c := strings.Compare(xp, yp); c != 0 {
		return c
	}
	return cmp.Compare(xn, yn)
}

func splitNumber(s string) (string, int) {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return s, -1
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return s, -1
	}
	return s[:i], n
}
