package inbox

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// MaxRecent is how many seqs of a conversation's newest plain messages a
// summary keeps: unread counts up to it come from the summary, a reader
// further behind costs one history count.
const MaxRecent = 128

// Summary is what the conversation list shows of one conversation, kept
// up to date by the fan-out as each item is delivered (Store.Note).
type Summary struct {
	// Seq is the seq of the newest message or event; its TS is the
	// conversation's activity, which orders the list (Activity). Seqs
	// are their partition stream's: those of conversations in different
	// streams do not compare.
	Seq     uint64
	TS      string
	Sender  string
	Kind    string
	Snippet string
	Deleted bool
	// Recent holds the seqs of the newest plain messages, ascending, at
	// most MaxRecent; Full says older ones were dropped.
	Recent []uint64
	Full   bool
	// Top is the highest seq noted, of any kind: the conversation's
	// last_seq.
	Top uint64
	// Expires is the preview's expires_at ("" when it does not
	// disappear); Volatile says Recent may hold messages that disappear,
	// so its unread count is not to be trusted (ttl.go).
	Expires  string
	Volatile bool
}

// Last renders the preview.
func (s *Summary) Last() *protocol.Last {
	if s == nil || s.Seq == 0 || (s.Expires != "" && protocol.Expired(s.Expires, time.Now())) {
		return nil // an expired preview is no preview (ttl.go)
	}
	return &protocol.Last{Seq: s.Seq, Sender: s.Sender, TS: s.TS, Kind: s.Kind, Snippet: s.Snippet, Deleted: s.Deleted, ExpiresAt: s.Expires}
}

// Unread counts the plain messages after readSeq; exact is false when
// the summary no longer holds them all (then n is a lower bound).
func (s *Summary) Unread(readSeq uint64) (n uint64, exact bool) {
	if s == nil {
		return 0, true
	}
	if s.Volatile {
		// Some of Recent may have disappeared: the history counts what
		// is still there.
		return 0, false
	}
	i, _ := slices.BinarySearch(s.Recent, readSeq+1)
	n = uint64(len(s.Recent) - i)
	return n, !s.Full || i > 0
}

// apply takes m, the conversation's next item in stream order, into the
// summary and reports whether it changed. Items at or below Top were
// applied before (a redelivery) and change nothing. An edit or delete of
// the newest message changes its preview; reactions only move Top.
func (s *Summary) apply(m *protocol.Message) bool {
	if m.Seq <= s.Top {
		return false // a redelivery
	}
	s.Top = m.Seq
	switch m.Kind {
	case protocol.KindMessage, protocol.KindEvent:
		s.Seq, s.TS, s.Sender, s.Kind = m.Seq, m.TS, m.Sender, m.Kind
		s.Snippet, s.Deleted, s.Expires = protocol.Snippet(m.Body, m.Kind), false, m.ExpiresAt
		if m.Kind == protocol.KindMessage {
			s.Volatile = s.Volatile || m.ExpiresAt != ""
			s.Recent = append(s.Recent, m.Seq)
			if len(s.Recent) > MaxRecent {
				s.Recent = slices.Delete(s.Recent, 0, len(s.Recent)-MaxRecent)
				s.Full = true
			}
		}
	case protocol.KindEdit:
		if m.Ref == s.Seq && m.Sender == s.Sender && !s.Deleted && s.Kind == protocol.KindMessage {
			s.Snippet = protocol.Snippet(m.Body, protocol.KindMessage)
		}
	case protocol.KindDelete:
		if m.Ref == s.Seq && s.Kind == protocol.KindMessage {
			s.Snippet, s.Deleted = "", true
		}
	}
	return true
}

// summaryVersion leads every encoded summary.
const summaryVersion = 1

const (
	flagDeleted = 1 << iota
	flagFull
	flagExpires  // Expires follows the flags
	flagVolatile // Volatile
)

var errBadSummary = errors.New("inbox: bad summary encoding")

// encode appends the compact binary form: version, seq, the strings with
// their lengths, flags, and the recent seqs as distances down from seq.
func (s *Summary) encode(dst []byte) []byte {
	dst = append(dst, summaryVersion)
	dst = binary.AppendUvarint(dst, s.Top)
	dst = binary.AppendUvarint(dst, s.Seq)
	for _, str := range [...]string{s.TS, s.Sender, s.Kind, s.Snippet} {
		dst = binary.AppendUvarint(dst, uint64(len(str)))
		dst = append(dst, str...)
	}
	var flags byte
	if s.Deleted {
		flags |= flagDeleted
	}
	if s.Full {
		flags |= flagFull
	}
	if s.Expires != "" {
		flags |= flagExpires
	}
	if s.Volatile {
		flags |= flagVolatile
	}
	dst = append(dst, flags)
	if s.Expires != "" {
		dst = binary.AppendUvarint(dst, uint64(len(s.Expires)))
		dst = append(dst, s.Expires...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Recent)))
	prev := s.Seq
	for i := len(s.Recent) - 1; i >= 0; i-- {
		dst = binary.AppendUvarint(dst, prev-s.Recent[i])
		prev = s.Recent[i]
	}
	return dst
}

func decodeSummary(b []byte) (*Summary, error) {
	if len(b) == 0 || b[0] != summaryVersion {
		return nil, errBadSummary
	}
	d := decoder{b: b[1:]}
	s := &Summary{Top: d.uvarint()}
	s.Seq = d.uvarint()
	s.TS, s.Sender, s.Kind, s.Snippet = d.str(), d.str(), d.str(), d.str()
	flags := d.byte()
	s.Deleted, s.Full, s.Volatile = flags&flagDeleted != 0, flags&flagFull != 0, flags&flagVolatile != 0
	if flags&flagExpires != 0 {
		s.Expires = d.str()
	}
	n := d.uvarint()
	if d.err || n > MaxRecent {
		return nil, errBadSummary
	}
	s.Recent = make([]uint64, n)
	prev := s.Seq
	for i := int(n) - 1; i >= 0; i-- {
		dist := d.uvarint()
		if dist > prev {
			return nil, errBadSummary
		}
		prev -= dist
		s.Recent[i] = prev
	}
	if d.err {
		return nil, errBadSummary
	}
	return s, nil
}

// decoder reads what encode wrote; err sticks at the first short read.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// encodeSeqs and decodeSeqs are a mention list: ascending seqs, as the
// first and then the distances up.
func encodeSeqs(dst []byte, seqs []uint64) []byte {
	dst = append(dst, summaryVersion)
	prev := uint64(0)
	for _, s := range seqs {
		dst = binary.AppendUvarint(dst, s-prev)
		prev = s
	}
	return dst
}

func decodeSeqs(b []byte) ([]uint64, error) {
	if len(b) == 0 || b[0] != summaryVersion {
		return nil, errBadSummary
	}
	d := decoder{b: b[1:]}
	var out []uint64
	prev := uint64(0)
	for len(d.b) > 0 && len(out) < protocol.MaxMentionCount {
		prev += d.uvarint()
		if d.err {
			return nil, errBadSummary
		}
		out = append(out, prev)
	}
	return out, nil
}

// CountAfter counts the seqs above seq.
func CountAfter(seqs []uint64, seq uint64) uint64 {
	i, _ := slices.BinarySearch(seqs, seq+1)
	return uint64(len(seqs) - i)
}

// Activity is what orders the list: the time (ts) of the newest message
// or event, in nanoseconds since 1970, which compares across partition
// streams as seqs do not; 0 before the first. A ts that does not parse
// (no writer stores one) counts as 1: after every real time.
func (s *Summary) Activity() uint64 { return ActivityOf(s.Seq, s.TS) }

// ActivityOf is the activity of a conversation whose newest message or
// event has seq and ts (seq 0: none).
func ActivityOf(seq uint64, ts string) uint64 {
	if seq == 0 {
		return 0
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || t.UnixNano() <= 1 {
		return 1
	}
	return uint64(t.UnixNano())
}

// TopSeq is the highest seq noted: the conversation's last_seq.
func (s *Summary) TopSeq() uint64 { return s.Top }
