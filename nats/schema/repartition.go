package schema

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Re-partitioning: moving the messages from N message streams to M
// (docs/scaling.md, Re-partitioning). The moved-to streams are created
// with JetStream's first sequence (StreamConfig.FirstSeq) above the last
// seq of every old stream, so every conversation's seqs keep growing
// across the move with no per-conversation offset: a client's cursor,
// prev chain and sync position stay valid. The procedure:
//
//  1. Fence: every old stream's subjects are replaced by a placeholder
//     nobody publishes to, so a publish to chat.msg.<conv> has no stream
//     and fails with no responders, which the gateways retry like a leader
//     election (bounded), then answer unavailable (the client resends with
//     the same client_id). The old streams are marked (MetaFenced).
//  2. Drain: wait until every consumer of the old streams that is being
//     consumed has acknowledged everything, and the history writer's
//     always (then the history store has every message). A consumer
//     nobody reads (a role not deployed) is skipped and reported; a
//     history consumer that is not drained aborts the move.
//  3. Create the new streams with FirstSeq F = the old streams' last seq
//     + 1, and their consumers.
//  4. Retire the old streams (MetaRetired; their consumers are deleted).
//     From then on ReadLayout reads the new layout; reads below F come
//     from the history store (the history reader reads below a stream's
//     first seq from the store). A retired stream stays, fenced, for its
//     de-dup window: the gateways look a send up in it (a send stored
//     there whose ack was lost, sent again after the move, is answered
//     with its original seq). DeleteRetired deletes it after.
//
// An abort before step 3 lifts the fence (the old subjects come back).
// The NATS servers' account mapping (Mappings) must then follow the new
// layout: `natter nats` nodes do it themselves (they follow the recorded
// layout), an external NATS needs its configuration changed and reloaded.
//
// Only 1 → M and N → 1 are done in one move: their old and new stored
// subjects cannot be confused (CHAT stores chat.msg.<conv> as published,
// partition streams chat.msg.<conv>.<p> as mapped), so a server whose
// mapping has not switched yet makes publishes fail, never land in the
// wrong stream. N → M (both above 1) is two moves, through 1, with every
// server's mapping switched in between.

// MetaFenced is the metadata key of an old message stream fenced by a
// re-partition: the number of streams being moved to.
const MetaFenced = "natter.fenced_for"

// fencedSubject is the one subject of a fenced stream: JetStream gives a
// stream without subjects its own name, which nobody publishes to either,
// but a named placeholder says why.
func fencedSubject(stream string) string { return "natter.fenced." + stream }

// RepartitionOptions tunes Repartition.
type RepartitionOptions struct {
	// Drain bounds the wait for the old streams' consumers (step 2);
	// default 2 minutes. Past it the move is aborted and the fence lifted.
	Drain time.Duration
	// Idle is how long a consumer must have delivered nothing, and have no
	// pull waiting, to count as not consumed (skipped, not waited for);
	// default 1 minute. The history writer's consumer is never skipped.
	Idle time.Duration
	// Progress, if set, is told each step.
	Progress func(step string)
}

// RepartitionResult says what a re-partition did.
type RepartitionResult struct {
	From, To int
	// Old and New are the message streams before and after.
	Old, New []string
	// FirstSeq is the new streams' first seq: every seq before the move
	// is below it, every seq after at or above it.
	FirstSeq uint64
	// Skipped lists the consumers (stream/consumer: pending) that nobody
	// consumed and that were not drained: their messages were never
	// handled by that consumer (a role not deployed).
	Skipped []string
	// Fence is how long publishes had no stream.
	Fence time.Duration
	// EarlyDeleted lists streams an earlier move retired that had a new
	// stream's name: deleted before their de-dup window ended.
	EarlyDeleted []string
	// Deleted lists the retired streams a run with nothing to move
	// deleted (their de-dup window had passed).
	Deleted []string
}

// ErrRepartitionAborted says a re-partition was given up before it
// changed anything: the fence was lifted, the old streams serve again.
var ErrRepartitionAborted = errors.New("schema: re-partition aborted, the old streams serve again")

// Repartition moves the messages to `to` message streams (1 for the one
// CHAT stream). It is the operator's step, with the operator's
// credentials (it creates and deletes streams). Moving to the count the
// schema has does nothing.
func Repartition(ctx context.Context, js jetstream.JetStream, to int, o RepartitionOptions) (RepartitionResult, error) {
	if o.Drain <= 0 {
		o.Drain = 2 * time.Minute
	}
	if o.Idle <= 0 {
		o.Idle = time.Minute
	}
	say := func(f string, args ...any) {
		if o.Progress != nil {
			o.Progress(fmt.Sprintf(f, args...))
		}
	}
	if to < 1 || to > MaxStreams {
		return RepartitionResult{}, fmt.Errorf("schema: %d streams: want 1 to %d", to, MaxStreams)
	}
	old, err := ReadLayout(ctx, js)
	if err != nil {
		return RepartitionResult{}, err
	}
	from := max(old.Streams, 1)
	res := RepartitionResult{From: from, To: to, Old: old.ChatStreams()}
	if from == to {
		// Nothing to move: what a move retired goes once its de-dup
		// window has passed.
		res.New = res.Old
		res.Deleted, err = DeleteRetired(ctx, js, time.Now())
		return res, err
	}
	if from > 1 && to > 1 {
		return res, fmt.Errorf("schema: %d streams to %d: move to 1 stream first (--streams 1), let every NATS server's mapping follow, then to %d", from, to, to)
	}
	infos := make([]*jetstream.StreamInfo, len(res.Old))
	for i, name := range res.Old {
		st, err := js.Stream(ctx, name)
		if err != nil {
			return res, fmt.Errorf("look up stream %s: %w", name, err)
		}
		infos[i] = st.CachedInfo()
	}
	c := configFrom(infos[0].Config)
	newLayout := Layout{Partitions: cmp(old.Partitions, DefaultPartitions)}
	if to > 1 {
		newLayout = Layout{Partitions: to, Streams: to}
	}
	res.New = newLayout.ChatStreams()

	// 1. Fence.
	fenced := time.Now()
	say("fence: %s take no publishes", strings.Join(res.Old, ", "))
	for _, info := range infos {
		cfg := fence(info.Config, to)
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return res, errors.Join(fmt.Errorf("fence stream %s: %w", cfg.Name, err), unfence(ctx, js, infos))
		}
	}
	// 2. Drain.
	say("drain: wait for the consumers of %s", strings.Join(res.Old, ", "))
	dctx, cancel := context.WithTimeout(ctx, o.Drain)
	skipped, err := drain(dctx, js, res.Old, o.Idle)
	cancel()
	if err != nil {
		return res, errors.Join(fmt.Errorf("%w: %w", ErrRepartitionAborted, err), unfence(ctx, js, infos))
	}
	res.Skipped = skipped
	// 3. The new streams, above every old seq.
	var last uint64
	for _, name := range res.Old {
		st, err := js.Stream(ctx, name)
		if err != nil {
			return res, errors.Join(fmt.Errorf("%w: look up %s: %w", ErrRepartitionAborted, name, err), unfence(ctx, js, infos))
		}
		info, err := st.Info(ctx)
		if err != nil {
			return res, errors.Join(fmt.Errorf("%w: look up %s: %w", ErrRepartitionAborted, name, err), unfence(ctx, js, infos))
		}
		// An empty stream made by an earlier move has LastSeq its
		// FirstSeq - 1.
		last = max(last, info.State.LastSeq, info.State.FirstSeq-min(info.State.FirstSeq, 1))
	}
	res.FirstSeq = last + 1
	// A stream an earlier move retired under a new stream's name (N → 1
	// → M within the de-dup window) goes now, its look-ups with it.
	for _, name := range res.New {
		st, err := js.Stream(ctx, name)
		if err != nil || !isRetired(st.CachedInfo().Config) {
			continue
		}
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return res, errors.Join(fmt.Errorf("%w: delete retired %s: %w", ErrRepartitionAborted, name, err), unfence(ctx, js, infos))
		}
		res.EarlyDeleted = append(res.EarlyDeleted, name)
	}
	say("create %s from seq %d", strings.Join(res.New, ", "), res.FirstSeq)
	for _, sc := range ChatStreamConfigs(c, newLayout) {
		sc.FirstSeq = res.FirstSeq
		if err := createFirst(ctx, js, sc); err != nil {
			// The new streams may hold nothing yet (no server maps to
			// them while the old are fenced… or already some): the
			// operator reruns, which finds them.
			return res, fmt.Errorf("create stream %s: %w (the old streams stay fenced: run the re-partition again)", sc.Name, err)
		}
		for _, cc := range Consumers(newLayout, sc.Name) {
			if _, err := js.CreateOrUpdateConsumer(ctx, sc.Name, cc); err != nil {
				return res, fmt.Errorf("create consumer %s on %s: %w (the old streams stay fenced: run the re-partition again)", cc.Durable, sc.Name, err)
			}
		}
	}
	// 4. The old streams retire: the history store has all they held;
	// they stay, fenced, for the gateways' de-duplication look-ups over
	// the de-dup window, their consumers go.
	say("retire %s", strings.Join(res.Old, ", "))
	at := time.Now().UTC().Format(time.RFC3339Nano)
	for _, info := range infos {
		cfg := fence(info.Config, to)
		cfg.Metadata[MetaRetired] = at
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return res, fmt.Errorf("retire stream %s: %w (run the re-partition again)", cfg.Name, err)
		}
		if err := deleteConsumers(ctx, js, cfg.Name); err != nil {
			return res, err
		}
	}
	res.Fence = time.Since(fenced)
	return res, nil
}

// MetaRetired is the metadata key of a message stream retired by a
// re-partition: when (RFC 3339). ReadLayout skips it; it holds only what
// the history store has, and stays for the de-dup window (RetiredStreams).
const MetaRetired = "natter.retired_at"

// Retired is a message stream a re-partition retired.
type Retired struct {
	Name string
	// Layout is the layout it was part of: whether it holds a
	// conversation (StreamOf) and under which subjects (StoredMsgs).
	Layout Layout
	// At is when it retired; Until when the de-dup window that began
	// before it ends (At + its de-dup window): the gateways look sends up
	// in it until then, and DeleteRetired deletes it after.
	At, Until time.Time
}

// Holds reports whether r holds conv's messages.
func (r Retired) Holds(conv string) bool { return r.Layout.StreamOf(conv) == r.Name }

// RetiredStreams lists the retired message streams.
func RetiredStreams(ctx context.Context, js jetstream.JetStream) ([]Retired, error) {
	var out []Retired
	for _, name := range AllChatStreams() {
		st, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("look up stream %s: %w", name, err)
		}
		if r, ok := retiredOf(st.CachedInfo().Config); ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// RetiredBeside lists the retired message streams beside the layout l
// with as few look-ups as a send path can afford once: beside partition
// streams only CHAT can be retired (a move to M > 1 is from 1), beside
// CHAT the partition streams CHAT_0 … up to the first that is missing.
func RetiredBeside(ctx context.Context, js jetstream.JetStream, l Layout) ([]Retired, error) {
	names := []string{StreamChat}
	if !l.Split() {
		names = chatStreamNames[:]
	}
	var out []Retired
	for _, name := range names {
		st, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("look up stream %s: %w", name, err)
		}
		if r, ok := retiredOf(st.CachedInfo().Config); ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func retiredOf(cfg jetstream.StreamConfig) (Retired, bool) {
	at, err := time.Parse(time.RFC3339Nano, cfg.Metadata[MetaRetired])
	if err != nil {
		return Retired{}, false
	}
	l := LayoutOf(cfg)
	if cfg.Name == StreamChat {
		l = Layout{} // StoredMsgs then tries both forms
	}
	return Retired{Name: cfg.Name, Layout: l, At: at, Until: at.Add(DedupeWindowOf(cfg))}, true
}

func isRetired(cfg jetstream.StreamConfig) bool { return cfg.Metadata[MetaRetired] != "" }

// DeleteRetired deletes the retired message streams whose de-dup window
// ended before now, and returns their names. natter nats nodes and
// natter serve run it every minute; a re-partition to the count the
// schema has runs it too.
func DeleteRetired(ctx context.Context, js jetstream.JetStream, now time.Time) ([]string, error) {
	rs, err := RetiredStreams(ctx, js)
	if err != nil {
		return nil, err
	}
	var deleted []string
	for _, r := range rs {
		if now.Before(r.Until) {
			continue
		}
		if err := js.DeleteStream(ctx, r.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return deleted, fmt.Errorf("delete retired stream %s: %w", r.Name, err)
		}
		deleted = append(deleted, r.Name)
	}
	return deleted, nil
}

// deleteConsumers deletes every consumer of stream.
func deleteConsumers(ctx context.Context, js jetstream.JetStream, stream string) error {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", stream, err)
	}
	lister := st.ListConsumers(ctx)
	var names []string
	for ci := range lister.Info() {
		names = append(names, ci.Name)
	}
	if err := lister.Err(); err != nil {
		return fmt.Errorf("list consumers of %s: %w", stream, err)
	}
	for _, n := range names {
		if err := st.DeleteConsumer(ctx, n); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("delete consumer %s of retired stream %s: %w", n, stream, err)
		}
	}
	return nil
}

// configFrom is the Config a message stream was made with, as far as its
// configuration records it: the new streams are made like the old.
func configFrom(sc jetstream.StreamConfig) Config {
	c := Config{Replicas: sc.Replicas, FastDuplicates: sc.Duplicates, MaxMsgSize: sc.MaxMsgSize, MaxConsumers: sc.MaxConsumers}
	if d, ok := HotWindowOf(sc); ok {
		c.HotWindow = d
	}
	c.Duplicates = DedupeWindowOf(sc)
	if n, err := strconv.Atoi(sc.Metadata[MetaPartitions]); err == nil && n > 0 && sc.Metadata[MetaStreams] == "" {
		c.Partitions = n
	}
	return c
}

// fence is sc taking no publishes: one placeholder subject, no transform,
// marked MetaFenced.
func fence(sc jetstream.StreamConfig, to int) jetstream.StreamConfig {
	meta := make(map[string]string, len(sc.Metadata)+1)
	for k, v := range sc.Metadata {
		meta[k] = v
	}
	meta[MetaFenced] = strconv.Itoa(to)
	sc.Metadata = meta
	sc.Subjects = []string{fencedSubject(sc.Name)}
	sc.SubjectTransform = nil
	return sc
}

// unfence gives the old streams their configuration back.
func unfence(ctx context.Context, js jetstream.JetStream, infos []*jetstream.StreamInfo) error {
	var errs []error
	for _, info := range infos {
		if _, err := js.UpdateStream(context.WithoutCancel(ctx), info.Config); err != nil {
			errs = append(errs, fmt.Errorf("lift the fence of %s: %w", info.Config.Name, err))
		}
	}
	return errors.Join(errs...)
}

// drain waits until every consumer of the streams has no message pending
// or unacknowledged, except those nobody consumes (returned, with what
// they have pending). The history writer's consumer is waited for
// whatever its activity: the store must have everything.
func drain(ctx context.Context, js jetstream.JetStream, streams []string, idle time.Duration) ([]string, error) {
	for {
		var skipped, waiting []string
		for _, name := range streams {
			st, err := js.Stream(ctx, name)
			if err != nil {
				return nil, fmt.Errorf("look up %s: %w", name, err)
			}
			lister := st.ListConsumers(ctx)
			for ci := range lister.Info() {
				if ci.NumPending == 0 && ci.NumAckPending == 0 {
					continue
				}
				what := fmt.Sprintf("%s/%s: %d pending, %d unacknowledged", name, ci.Name, ci.NumPending, ci.NumAckPending)
				active := ci.NumWaiting > 0 || ci.NumAckPending > 0 ||
					(ci.Delivered.Last != nil && time.Since(*ci.Delivered.Last) < idle)
				if ci.Name != ConsumerHistory && !active {
					skipped = append(skipped, what)
					continue
				}
				waiting = append(waiting, what)
			}
			if err := lister.Err(); err != nil {
				return nil, fmt.Errorf("list consumers of %s: %w", name, err)
			}
		}
		if len(waiting) == 0 {
			return skipped, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("consumers not drained: %s: %w", strings.Join(waiting, "; "), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// createFirst creates sc, or finds it made by an earlier run of the same
// move (same first seq) and updates it.
func createFirst(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	_, err := js.CreateStream(ctx, sc)
	if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return err
	}
	st, serr := js.Stream(ctx, sc.Name)
	if serr != nil {
		return serr
	}
	if got := st.CachedInfo().Config.FirstSeq; got != sc.FirstSeq {
		return fmt.Errorf("%w: it starts at seq %d, not %d", err, got, sc.FirstSeq)
	}
	_, err = js.UpdateStream(ctx, sc)
	return err
}

// LayoutStamp identifies the message streams' current layout: their
// count and the creation time of the stream ReadLayout reads. A process
// that read the layout at start compares it with later stamps to learn
// that the streams were re-partitioned (every move makes new streams).
func LayoutStamp(ctx context.Context, js jetstream.JetStream) (string, Layout, error) {
	l, err := ReadLayout(ctx, js)
	if err != nil {
		return "", l, err
	}
	name := l.ChatStreams()[0]
	st, err := js.Stream(ctx, name)
	if err != nil {
		return "", l, fmt.Errorf("look up stream %s: %w", name, err)
	}
	info := st.CachedInfo()
	return name + "/" + strconv.Itoa(max(l.Streams, 1)) + "@" + strconv.FormatInt(info.Created.UnixNano(), 10), l, nil
}
