package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/natter-chat/natter/nats/lease"
	"github.com/natter-chat/natter/nats/pinned"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/tracing"
)

// WriterConfig tunes the history writer.
type WriterConfig struct {
	// Batch is the most messages fetched and appended at once.
	Batch int
	// MaxBackoff caps the wait between attempts while the store fails.
	MaxBackoff time.Duration
	// Logger; slog.Default by default.
	Logger *slog.Logger
	// SingleWriter, when set, makes this the cluster's only writer: it
	// holds the history writer lease (schema.LeaseHistoryWriter) under this
	// name while it runs, and Claim and Run fail with ErrWriterRunning
	// while another name holds it. Set it for an embedded store, which
	// only this process sees (two would each get part of the history),
	// to a name that stays the same across restarts of the same store
	// (localstore.Name): a restarted writer takes its own lease back at
	// once. Leave it empty for a shared store (ScyllaDB), which takes any
	// number of writers.
	SingleWriter string
	// LeaseTTL is how long the lease outlives a writer that died without
	// releasing it; default 15s.
	LeaseTTL time.Duration
	// ExpireEvery is how often the writer sweeps expired rows from a
	// store that is an Expirer (expiry.go); default 1s.
	ExpireEvery time.Duration
	// Tracer, optional, records a span per batch appended, linked to the
	// trace context each message stored; nil, the default, records
	// nothing.
	Tracer trace.Tracer
}

// Writer copies the message streams (CHAT, or each partition stream) into
// a Store: the system of record. It
// fetches a batch, appends it, and only then acks it, so the consumer's ack
// floor never passes a message the store lacks. While the
// store fails it retries the same batch with backoff and fetches nothing
// new: the stream holds the backlog, and the lag shows in
// `nats consumer report CHAT`.
//
// A seq the store already holds with other content (ErrConflict) stops
// the writer: the stream and the store disagree, and skipping would hide
// messages; see docs/operations.md.
type Writer struct {
	cfg   WriterConfig
	js    jetstream.JetStream
	store Store
	lease *lease.Lease // held between Claim and the end of Run
}

// NewWriter returns a writer; Run starts it.
func NewWriter(cfg WriterConfig, js jetstream.JetStream, store Store) *Writer {
	if cfg.Batch <= 0 || cfg.Batch > schema.HistoryBatch {
		cfg.Batch = schema.HistoryBatch
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.ExpireEvery <= 0 {
		cfg.ExpireEvery = time.Second
	}
	return &Writer{cfg: cfg, js: js, store: store}
}

// Claim takes the single-writer lease, if the config asks for one, so a
// second writer fails at start with ErrWriterRunning rather than in the
// background; Run takes it itself otherwise. Call it before Run, not
// concurrently.
func (w *Writer) Claim(ctx context.Context) error {
	if w.cfg.SingleWriter == "" || w.lease != nil {
		return nil
	}
	l, err := lease.Claim(ctx, w.js, lease.Config{Key: schema.LeaseHistoryWriter, Owner: w.cfg.SingleWriter,
		TTL: w.cfg.LeaseTTL, What: "history writer", Logger: w.cfg.Logger})
	if errors.Is(err, lease.ErrHeld) {
		return fmt.Errorf("%w: one embedded history store per cluster (use --cql for several writers): %w", ErrWriterRunning, err)
	}
	if err != nil {
		return err
	}
	w.lease = l
	return nil
}

// Run writes until ctx ends, and then returns nil. It returns early with
// an error wrapping ErrConflict when the store holds a seq with other
// content, ErrWriterRunning when another writer holds the lease, and
// ErrLeaseLost when another writer took the lease while this one ran. A
// lease that could not be renewed for its TTL (the LEASES bucket without a
// leader, e.g. while the node that led it restarts) pauses the writer
// until it has the lease again, which it keeps trying: it does not stop.
func (w *Writer) Run(ctx context.Context) error {
	if err := w.Claim(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while claiming: a stop, not a failure
		}
		return err
	}
	defer w.startSweep(ctx)()
	if w.lease == nil {
		return w.write(ctx)
	}
	defer func() { w.lease = nil }()
	err := lease.Run(ctx, w.lease, w.write)
	if errors.Is(err, lease.ErrLost) {
		return fmt.Errorf("%w: %w", ErrLeaseLost, err)
	}
	return err
}

// write is the consuming loop: a batch is acked once the store has it; a
// batch whose append ended with ctx goes back at once (a stop, or a
// lapsed lease) to whichever writer pulls next. With partition streams
// (schema.Layout) each stream has its own consumer and loop, so a slow or
// leaderless partition holds up only its own.
func (w *Writer) write(ctx context.Context) error {
	l, err := w.readLayout(ctx)
	if err != nil {
		return fmt.Errorf("history writer: %w", err)
	}
	return pinned.RunBatchesStreams(ctx, w.js, pinned.BatchConfig{Consumer: schema.ConsumerHistory,
		Group: schema.PriorityGroupHistory, Batch: w.cfg.Batch, Logger: w.cfg.Logger}, l.ChatStreams(),
		func(stream string) pinned.BatchHandler {
			return func(ctx context.Context, got []jetstream.Msg) error {
				msgs := make([]*protocol.Message, 0, len(got))
				for _, m := range got {
					if pm := w.toMessage(m); pm != nil {
						msgs = append(msgs, pm)
					}
				}
				return w.appendBatch(ctx, stream, msgs, got)
			}
		})
}

// readLayout reads the message streams' layout, retrying while the
// stream cannot answer (its leader being elected: a timeout, no
// responders) until ctx ends. Only a schema with no message stream at
// all stops the writer.
func (w *Writer) readLayout(ctx context.Context) (schema.Layout, error) {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		l, err := schema.ReadLayout(ctx, w.js)
		if err == nil || ctx.Err() != nil || errors.Is(err, jetstream.ErrStreamNotFound) {
			return l, err
		}
		if attempt == 1 || attempt%10 == 0 {
			w.cfg.Logger.Warn("history writer cannot read the stream layout yet; retrying", "attempt", attempt, "err", err)
		}
		if !sleep(ctx, backoff) {
			return l, ctx.Err()
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// appendBatch is append, inside a SpanAppend span when tracing is on: a
// trace of its own, linked to the context each message of the batch
// stored (the gateway's SpanPublish), since one batch holds the messages
// of many traces.
func (w *Writer) appendBatch(ctx context.Context, stream string, msgs []*protocol.Message, got []jetstream.Msg) error {
	if w.cfg.Tracer == nil || len(msgs) == 0 {
		return w.append(ctx, msgs, got)
	}
	var links []trace.Link
	for _, m := range got {
		if sc := tracing.Remote(m.Headers()); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	ctx, span := w.cfg.Tracer.Start(ctx, tracing.SpanAppend, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithNewRoot(), trace.WithLinks(links...),
		trace.WithAttributes(tracing.NATS, tracing.KeyOperation.String("process"),
			tracing.KeyDestination.String(stream), tracing.KeyBatchCount.Int(len(msgs))))
	defer span.End()
	err := w.append(ctx, msgs, got)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "not appended")
	}
	return err
}

// append retries until the store has msgs or ctx ends, telling the server
// the batch is still being worked on so it is not redelivered meanwhile.
// It returns ctx's error if ctx ends first. A conflict is not retried: it
// is returned, the batch left unacked.
func (w *Writer) append(ctx context.Context, msgs []*protocol.Message, got []jetstream.Msg) error {
	if len(msgs) == 0 {
		return nil
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := w.store.Append(ctx, msgs)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrConflict) {
			w.cfg.Logger.Error("history writer stops: the store holds a seq of the CHAT stream with other content; see docs/operations.md, Restoring and rebuilding the history store",
				"messages", len(msgs), "first_seq", msgs[0].Seq, "err", err)
			for _, m := range got {
				_ = m.Nak()
			}
			return fmt.Errorf("history writer: %w", err)
		}
		w.cfg.Logger.Warn("history store append failed; retrying", "attempt", attempt, "messages", len(msgs), "err", err)
		for _, m := range got {
			_ = m.InProgress()
		}
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// toMessage decodes a stored message; nil for one that is not a valid
// envelope, which goes to the DEAD stream instead (internal services may
// publish anything to chat.msg.*).
func (w *Writer) toMessage(m jetstream.Msg) *protocol.Message {
	msg, err := DecodeStored(m)
	switch {
	case errors.Is(err, ErrUnplaced):
		return nil
	case errors.Is(err, ErrNoConversation):
		seq := Seq(m)
		_ = w.js.Conn().PublishMsg(schema.DeadLetter("", seq, m.Subject(), "subject holds no valid conversation id", m.Data()))
		return nil
	case err != nil:
		conv, seq := schema.ConvFromSubject(m.Subject()), Seq(m)
		w.cfg.Logger.Warn("history skips a bad envelope", "conv", conv, "seq", seq, "err", err)
		_ = w.js.Conn().PublishMsg(schema.DeadLetter(conv, seq, m.Subject(), err.Error(), m.Data()))
		return nil
	}
	if msg.ExpiresAt != "" && msg.Expired(time.Now()) {
		return nil // gone already (expiry.go): no store keeps it
	}
	return msg
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
