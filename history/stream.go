// Package history answers sync and scroll-back. For now the pages come from
// the CHAT stream itself (the hot window); the history store that keeps
// messages after they leave the stream plugs in behind the same methods.
package history

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// batchSize is how many messages one batch direct get asks for.
const batchSize = 256

// Stream reads pages of one conversation from its message stream (CHAT,
// or its partition stream, schema.Layout) with direct gets: no consumer is
// created per request.
type Stream struct {
	js jetstream.JetStream
	// parts are the message streams, by schema.Layout.StreamIndex.
	parts []streamPart
	// layout says which stream and subjects a conversation's messages are
	// stored in, read when the Stream is made.
	layout schema.Layout
	// now is the clock expired items are hidden by (expiry.go).
	now func() time.Time
}

// streamPart is one message stream.
type streamPart struct {
	stream jetstream.Stream
	// directGet is the subject of the stream's direct gets; msgGet of
	// its leader's.
	directGet, msgGet string
}

// NewStream returns a reader over the message streams.
func NewStream(ctx context.Context, js jetstream.JetStream) (*Stream, error) {
	l, err := schema.ReadLayout(ctx, js)
	if err != nil {
		return nil, err
	}
	s := &Stream{js: js, layout: l, now: time.Now}
	for _, name := range l.ChatStreams() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("open stream %s: %w", name, err)
		}
		s.parts = append(s.parts, streamPart{stream: st, directGet: schema.DirectGetAPI(name), msgGet: schema.MsgGetAPI(name)})
	}
	return s, nil
}

// part is the stream holding conv.
func (s *Stream) part(conv string) *streamPart { return &s.parts[s.layout.StreamIndex(conv)] }

// After returns up to limit messages of conv with seq > after, ascending,
// and whether more follow.
func (s *Stream) After(ctx context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error) {
	var out []*protocol.Message
	next := after + 1
	for len(out) <= limit {
		want := min(limit+1-len(out), batchSize)
		n, last, err := s.scan(ctx, conv, next, want, func(m *protocol.Message) bool {
			out = append(out, m)
			return len(out) <= limit
		})
		if err != nil {
			return nil, false, err
		}
		if n < want {
			break
		}
		next = last + 1
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// Before returns the newest limit messages of conv with seq < before,
// ascending, and whether older ones exist. before 0 means from the newest.
//
// JetStream reads only forwards, so this scans a window of stream
// sequences below before, widening it until it holds limit+1 messages of
// the conversation or reaches the start of the stream.
func (s *Stream) Before(ctx context.Context, conv string, before uint64, limit int) ([]*protocol.Message, bool, error) {
	hi := before - 1
	if before == 0 {
		last, err := s.Last(ctx, conv)
		if err != nil || last == 0 {
			return nil, false, err
		}
		hi = last
	}
	if hi == 0 {
		return nil, false, nil
	}
	window := uint64(limit+1) * 4
	for {
		lo := uint64(1)
		if hi > window {
			lo = hi - window + 1
		}
		ring := make([]*protocol.Message, 0, limit+1)
		next := lo
		for next <= hi {
			// The window holds at most hi-next+1 messages: asking for a
			// whole batch would read that many past hi.
			want := int(min(uint64(batchSize), hi-next+1))
			n, last, err := s.scan(ctx, conv, next, want, func(m *protocol.Message) bool {
				if m.Seq > hi {
					return false
				}
				if len(ring) == limit+1 {
					copy(ring, ring[1:])
					ring = ring[:limit]
				}
				ring = append(ring, m)
				return true
			})
			if err != nil {
				return nil, false, err
			}
			if n < want || last >= hi {
				break
			}
			next = last + 1
		}
		if len(ring) > limit {
			return ring[1:], true, nil
		}
		if lo == 1 {
			return ring, false, nil
		}
		window *= 4
	}
}

// scan reads up to batch messages of conv from seq on and hands each to
// fn until it returns false. It returns how many messages the server sent
// and the last seq seen.
//
// It is one batch direct get ($JS.API.DIRECT.GET.CHAT with next_by_subj
// and batch), done here rather than with jetstreamext.GetBatch, which
// costs a goroutine and a select per message and parses every message's
// timestamp: the replies arrive on a buffered channel filled by the
// connection's reader, and of each message's headers only the seq is
// read (the timestamp only for an envelope without ts).
func (s *Stream) scan(ctx context.Context, conv string, seq uint64, batch int, fn func(*protocol.Message) bool) (int, uint64, error) {
	going := true
	return s.get(ctx, conv, seq, batch, func(m *nats.Msg, sq uint64) {
		if !going {
			return
		}
		if env, err := protocol.DecodeEnvelope(m.Data); err == nil && live(env, s.now) {
			// The server writes the stream's time as FormatTime does.
			going = fn(env.Message(conv, sq, m.Header.Get(jetstream.TimeStampHeaer)))
		}
	})
}

// get is scan's batch direct get: it hands each message the server sent
// to each, with its seq. On a stream upgraded to partitions whose old
// messages are still there, conv's messages may be stored under two
// subjects: it reads a batch of each and hands on the first batch of both
// in seq order.
func (s *Stream) get(ctx context.Context, conv string, seq uint64, batch int, each func(*nats.Msg, uint64)) (int, uint64, error) {
	subjects := s.layout.StoredMsgs(conv)
	if len(subjects) == 1 {
		return s.getSubject(ctx, conv, subjects[0], seq, batch, each)
	}
	type got struct {
		m  *nats.Msg
		sq uint64
	}
	var all []got
	for _, subj := range subjects {
		if _, _, err := s.getSubject(ctx, conv, subj, seq, batch, func(m *nats.Msg, sq uint64) {
			all = append(all, got{m, sq})
		}); err != nil {
			return 0, 0, err
		}
	}
	slices.SortFunc(all, func(a, b got) int { return cmp.Compare(a.sq, b.sq) })
	all = all[:min(len(all), batch)]
	for _, g := range all {
		each(g.m, g.sq)
	}
	if len(all) == 0 {
		return 0, 0, nil
	}
	return len(all), all[len(all)-1].sq, nil
}

// getSubject is get of one stored subject.
func (s *Stream) getSubject(ctx context.Context, conv, subj string, seq uint64, batch int, each func(*nats.Msg, uint64)) (int, uint64, error) {
	req := make([]byte, 0, 64+len(subj))
	req = append(req, `{"seq":`...)
	req = strconv.AppendUint(req, max(seq, 1), 10)
	req = append(req, `,"batch":`...)
	req = strconv.AppendInt(req, int64(batch), 10)
	req = append(req, `,"next_by_subj":`...)
	req = protocol.AppendString(req, subj)
	req = append(req, '}')
	return s.request(ctx, conv, seq, req, batch, each)
}

// request sends req, a direct get request that answers with up to batch
// messages followed by an end-of-batch sentinel (or a 404 status when
// there are none), and hands each message to each, with its seq. conv and
// seq only name the read in errors.
func (s *Stream) request(ctx context.Context, conv string, seq uint64, req []byte, batch int, each func(*nats.Msg, uint64)) (int, uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("read %s from %d: %w", conv, seq, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.js.Conn().Opts.Timeout)
		defer cancel()
	}
	nc := s.js.Conn()
	// The batch, the end-of-batch sentinel and a status: the reader never
	// finds the channel full.
	ch := make(chan *nats.Msg, batch+2)
	inbox := nc.NewRespInbox()
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s from %d: %w", conv, seq, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(s.part(conv).directGet, inbox, req); err != nil {
		return 0, 0, fmt.Errorf("read %s from %d: %w", conv, seq, err)
	}
	n, last := 0, uint64(0)
	for {
		var m *nats.Msg
		select {
		case m = <-ch:
		default:
			select {
			case m = <-ch:
			case <-ctx.Done():
				return n, last, fmt.Errorf("read %s from %d: %w", conv, seq, ctx.Err())
			}
		}
		if len(m.Data) == 0 {
			if status := m.Header.Get(statusHeader); status != "" {
				switch status {
				case statusEndOfBatch, statusNoMessages:
					return n, last, nil
				case statusNoResponders:
					return n, last, fmt.Errorf("read %s from %d: %w", conv, seq, nats.ErrNoResponders)
				}
				return n, last, fmt.Errorf("read %s from %d: status %s %s", conv, seq, status, m.Header.Get(descriptionHeader))
			}
		}
		sq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return n, last, fmt.Errorf("read %s from %d: a reply without a seq: %w", conv, seq, err)
		}
		n++
		last = sq
		each(m, sq)
	}
}

// span counts the messages of conv the stream holds with seq in
// (from, upTo], valid envelopes or not, without reading them: two direct
// gets of one message each, whose Nats-Num-Pending says how many of the
// subject's messages follow it. It returns the count and the seq of the
// first of them (0 when there are none). ok is false when appends in
// between made the count unusable.
//
// The count is never below the truth: what is pending above upTo is read
// first, so a message appended in between can only add to the count.
// Nothing lands in the range meanwhile (appends go above the stream's
// last seq), and the stream removes only its oldest messages: every
// message it ever held from first to upTo is still there.
//
// That reasoning is about one copy of the stream. Direct gets are
// answered by any replica; a follower that lags behind the other answers
// the second get with fewer messages, which lowers the count. A count
// that comes out too low equal to a store that lacks as many rows would
// let storeLacks miss them: it takes replication lag of exactly the rows
// the store lacks, in a store already damaged (lost or restored); the old
// full read was exposed to lag only for the rows the follower lacked.
// Known limit, see docs/benchmarks.md (issue 19).
func (s *Stream) span(ctx context.Context, conv string, from, upTo uint64) (n, first uint64, ok bool, err error) {
	above, _, err := s.pending(ctx, conv, upTo+1)
	if err != nil {
		return 0, 0, false, err
	}
	all, first, err := s.pending(ctx, conv, from+1)
	if err != nil {
		return 0, 0, false, err
	}
	if first == 0 || first > upTo {
		return 0, 0, true, nil
	}
	if all < above {
		return 0, 0, false, nil
	}
	return all - above, first, true, nil
}

// pending returns how many messages of conv the stream holds from seq on
// and the seq of the first of them (0 when there are none), summed over
// the subjects conv's messages are stored under.
func (s *Stream) pending(ctx context.Context, conv string, seq uint64) (n, first uint64, err error) {
	for _, subj := range s.layout.StoredMsgs(conv) {
		var perr error
		_, _, err = s.getSubject(ctx, conv, subj, seq, 1, func(m *nats.Msg, sq uint64) {
			after, err := strconv.ParseUint(m.Header.Get(numPendingHeader), 10, 64)
			if err != nil {
				perr = fmt.Errorf("pending of %s from %d: %s %q: %w", conv, seq, numPendingHeader, m.Header.Get(numPendingHeader), err)
			}
			n += after + 1
			if first == 0 || sq < first {
				first = sq
			}
		})
		if err == nil {
			err = perr
		}
		if err != nil {
			return 0, 0, err
		}
	}
	return n, first, nil
}

// Statuses of direct get replies.
const (
	statusHeader       = "Status"
	numPendingHeader   = "Nats-Num-Pending"
	descriptionHeader  = "Description"
	statusEndOfBatch   = "204"
	statusNoMessages   = "404"
	statusNoResponders = "503"
)

// First returns the first seq of conv's stream, at least 1: the stream
// holds every message from there on (only age removes the oldest), but
// those the eraser deleted, which the store keeps as tombstones
// (services/erase).
func (s *Stream) First(ctx context.Context, conv string) (uint64, error) {
	st := s.part(conv).stream
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("info of %s: %w", st.CachedInfo().Config.Name, err)
	}
	return max(info.State.FirstSeq, 1), nil
}

// Last returns the seq of conv's newest message in the stream, 0 if none.
// The current stored subject holds conv's newer messages than any older
// one, so the first subject that has a message has the newest.
func (s *Stream) Last(ctx context.Context, conv string) (uint64, error) {
	for _, subj := range s.layout.StoredMsgs(conv) {
		raw, err := s.part(conv).stream.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("last of %s: %w", conv, err)
		}
		return raw.Sequence, nil
	}
	return 0, nil
}

// LeaderLast is Last as the leader of conv's stream has it: the seq of
// every message acknowledged so far counts. Last reads with a direct get,
// which any replica answers, and one behind the leader answers an older
// seq; what a client is shown as the conversation's last_seq, and what its
// read and delivered markers are clamped to, must not be older than a
// message already acknowledged (a read of a message just sent was clamped
// to the seq before it and lost, on a 3-node cluster). One request to the
// leader per stored subject of conv (one, but on a stream upgraded to
// partitions), instead of one direct get.
func (s *Stream) LeaderLast(ctx context.Context, conv string) (uint64, error) {
	p := s.part(conv)
	for _, subj := range s.layout.StoredMsgs(conv) {
		raw, err := s.leaderLastMsg(ctx, p, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("last of %s: %w", conv, err)
		}
		// The current subject holds conv's newer messages (Last).
		return raw.Sequence, nil
	}
	return 0, nil
}

// ItemBefore returns the seq of conv's newest item (valid envelope) below
// seq in the stream, 0 if the stream holds none. Each step is one direct
// get of the subject's last message up to a seq (multi_last with
// up_to_seq, as jetstreamext.GetLastMsgsFor asks it, but through request:
// natsext.RequestMany, under GetLastMsgsFor, makes a 65,536-slot channel,
// 512 KiB, per call), so it reads no bodies of other messages; an invalid
// envelope is stepped over.
func (s *Stream) ItemBefore(ctx context.Context, conv string, seq uint64) (uint64, error) {
	subjects := s.layout.StoredMsgs(conv)
	for seq > 1 {
		req := make([]byte, 0, 64+2*len(conv))
		req = append(req, `{"multi_last":[`...)
		for i, subj := range subjects {
			if i > 0 {
				req = append(req, ',')
			}
			req = protocol.AppendString(req, subj)
		}
		req = append(req, `],"up_to_seq":`...)
		req = strconv.AppendUint(req, seq-1, 10)
		req = append(req, '}')
		var found uint64
		var valid bool
		// On a stream upgraded to partitions conv may have a last message
		// under each of its two subjects: the newer one counts.
		_, _, err := s.request(ctx, conv, seq, req, len(subjects), func(m *nats.Msg, sq uint64) {
			if sq > found {
				env, derr := protocol.DecodeEnvelope(m.Data)
				found, valid = sq, derr == nil && live(env, s.now)
			}
		})
		if err != nil {
			return 0, fmt.Errorf("item of %s before %d: %w", conv, seq, err)
		}
		if found == 0 || found >= seq {
			return 0, nil
		}
		if valid {
			return found, nil
		}
		seq = found
	}
	return 0, nil
}

// Get returns the message with seq in conv, or ErrNotFound.
//
// It reads with a direct get, which any replica answers; one that has not
// stored seq yet says not found, so a not found is asked again of the
// stream's leader: a message acknowledged a moment ago (an edit's ref
// right after the send) is there.
func (s *Stream) Get(ctx context.Context, conv string, seq uint64) (*protocol.Message, error) {
	p := s.part(conv)
	raw, err := p.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		raw, err = s.leaderMsg(ctx, p, seq)
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get %s/%d: %w", conv, seq, err)
	}
	if !schema.IsStoredMsgOf(raw.Subject, conv) {
		return nil, ErrNotFound
	}
	m := decode(conv, raw)
	if m == nil || m.Expired(s.now()) {
		return nil, ErrNotFound
	}
	return m, nil
}

// decode turns a stored message into a client message; nil for an envelope
// that does not validate (an internal service published garbage).
func decode(conv string, raw *jetstream.RawStreamMsg) *protocol.Message {
	env, err := protocol.DecodeEnvelope(raw.Data)
	if err != nil {
		return nil
	}
	return env.Message(conv, raw.Sequence, protocol.FormatTime(raw.Time))
}

// CountAfter counts the plain messages (not edits, deletions or reactions)
// of conv with seq > after, scanning at most max of them: unread counts
// saturate at max.
func (s *Stream) CountAfter(ctx context.Context, conv string, after uint64, max int) (uint64, error) {
	var n uint64
	next := after + 1
	for n < uint64(max) {
		got, last, err := s.scan(ctx, conv, next, batchSize, func(m *protocol.Message) bool {
			if m.Kind == protocol.KindMessage {
				n++
			}
			return n < uint64(max)
		})
		if err != nil {
			return 0, err
		}
		if got < batchSize {
			break
		}
		next = last + 1
	}
	return n, nil
}

// leaderMsg reads the message at seq from p's leader (STREAM.MSG.GET, not
// a direct get); jetstream.ErrMsgNotFound when it has none.
func (s *Stream) leaderMsg(ctx context.Context, p *streamPart, seq uint64) (*jetstream.RawStreamMsg, error) {
	req, _ := json.Marshal(struct {
		Seq uint64 `json:"seq"`
	}{seq})
	return s.leaderGet(ctx, p, req)
}

// leaderLastMsg reads the last message on subj from p's leader;
// jetstream.ErrMsgNotFound when it has none.
func (s *Stream) leaderLastMsg(ctx context.Context, p *streamPart, subj string) (*jetstream.RawStreamMsg, error) {
	req, _ := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{subj})
	return s.leaderGet(ctx, p, req)
}

// leaderGet sends a STREAM.MSG.GET request to p's leader.
func (s *Stream) leaderGet(ctx context.Context, p *streamPart, req []byte) (*jetstream.RawStreamMsg, error) {
	reply, err := s.js.Conn().RequestWithContext(ctx, p.msgGet, req)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Error *struct {
			ErrCode     jetstream.ErrorCode `json:"err_code"`
			Description string              `json:"description"`
		} `json:"error"`
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, err
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == jetstream.JSErrCodeMessageNotFound:
		return nil, jetstream.ErrMsgNotFound
	case resp.Error != nil:
		return nil, fmt.Errorf("%s (%d)", resp.Error.Description, resp.Error.ErrCode)
	case resp.Message == nil:
		return nil, errors.New("empty answer")
	}
	m := resp.Message
	raw := &jetstream.RawStreamMsg{Subject: m.Subject, Sequence: m.Seq, Data: m.Data, Time: m.Time}
	if len(m.Header) > 0 {
		if raw.Header, err = nats.DecodeHeadersMsg(m.Header); err != nil {
			return nil, err
		}
	}
	return raw, nil
}
