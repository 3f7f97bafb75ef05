package localstore

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/natter-chat/natter/protocol"
)

// Key layout. Every key is a one-byte table tag, the conversation id with a
// one-byte length prefix (so "a" never sees "ab"'s rows), then the seq as 8
// big-endian bytes, so byte order is seq order within a conversation: a
// forward page is SeekGE + Next, a backward page SeekLT + Prev.
//
//	'm' len conv seq  -> row (encodeRow)
//	'p' len conv seq  -> empty; one per plain message (Kind ""), for Count
//	't' len conv root seq -> empty; one per thread reply, for ThreadAfter
//	                         and ThreadBefore (the row is read by 'm')
const (
	tagRow    = 'm'
	tagPlain  = 'p'
	tagThread = 't'
)

// maxConvLen is the longest conversation id the one-byte prefix can carry;
// protocol ids are at most 64 bytes.
const maxConvLen = math.MaxUint8

func key(tag byte, conv string, seq uint64) []byte {
	k := make([]byte, 0, 2+len(conv)+8)
	k = append(k, tag, byte(len(conv)))
	k = append(k, conv...)
	return binary.BigEndian.AppendUint64(k, seq)
}

// threadKey is the key of the thread reply seq under root.
func threadKey(conv string, root, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(key(tagThread, conv, root), seq)
}

// bounds returns the iterator bounds [lo, hi) covering the seqs in
// [from, to] of conv.
func bounds(tag byte, conv string, from, to uint64) (lo, hi []byte) {
	lo = key(tag, conv, from)
	hi = append(key(tag, conv, to), 0) // just above the key of seq to
	return lo, hi
}

// seqOf reads the seq back from a key.
func seqOf(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(k)-8:]) }

func checkKey(m *protocol.Message) error {
	if m.Conv == "" || len(m.Conv) > maxConvLen || m.Seq == 0 {
		return fmt.Errorf("%w: conv %q seq %d", ErrInvalid, m.Conv, m.Seq)
	}
	return nil
}

// Row values, format 2: a format byte, a flags byte, EditSeq, Ref, ReplyTo,
// Thread, ThreadCount and ThreadLastSeq as uvarints, Sender, ClientID, TS,
// Kind and DeletedBy as uvarint-length-prefixed strings, the quote when
// flagQuote is set (Seq is ReplyTo; Sender, Kind and Snippet as strings),
// the mentions (a uvarint count, then each as a string), then the Body
// bytes to the end. Body is kept exactly as received: JSON encoding would
// compact and re-escape it.
//
// Format 1 (before replies and threads) is a format byte, a flags byte,
// EditSeq and Ref, Sender, ClientID, TS and Kind, then the Body: such rows
// are still read, as rows without the newer fields, and rewritten in format
// 2 only when an edit or delete changes them.
const (
	rowFormat1        = 1
	rowFormat         = 2
	flagDeleted       = 1 << 0
	flagQuote         = 1 << 1
	flagQuoteDeleted  = 1 << 2
	flagExpires       = 1 << 3  // format 2: ExpiresAt follows the mentions (expiry.go)
	maxDecodedMention = 1 << 10 // far above protocol.MaxMentions: a corrupt count fails
)

func encodeRow(m *protocol.Message) []byte {
	n := 2 + 6*binary.MaxVarintLen64 + 10*binary.MaxVarintLen16 + len(m.ExpiresAt) +
		len(m.Sender) + len(m.ClientID) + len(m.TS) + len(m.Kind) + len(m.DeletedBy) + len(m.Body)
	if q := m.Quote; q != nil {
		n += len(q.Sender) + len(q.Kind) + len(q.Snippet)
	}
	for _, u := range m.Mentions {
		n += binary.MaxVarintLen16 + len(u)
	}
	b := make([]byte, 0, n)
	var flags byte
	if m.Deleted {
		flags |= flagDeleted
	}
	if m.Quote != nil {
		flags |= flagQuote
		if m.Quote.Deleted {
			flags |= flagQuoteDeleted
		}
	}
	if m.ExpiresAt != "" {
		flags |= flagExpires
	}
	b = append(b, rowFormat, flags)
	for _, x := range []uint64{m.EditSeq, m.Ref, m.ReplyTo, m.Thread, m.ThreadCount, m.ThreadLastSeq} {
		b = binary.AppendUvarint(b, x)
	}
	strs := []string{m.Sender, m.ClientID, m.TS, m.Kind, m.DeletedBy}
	if q := m.Quote; q != nil {
		strs = append(strs, q.Sender, q.Kind, q.Snippet)
	}
	for _, s := range strs {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Mentions)))
	for _, u := range m.Mentions {
		b = appendString(b, u)
	}
	if m.ExpiresAt != "" {
		b = appendString(b, m.ExpiresAt)
	}
	return append(b, m.Body...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeRow decodes v, which the caller may reuse afterwards: nothing of
// the result aliases it.
func decodeRow(conv string, seq uint64, v []byte) (*protocol.Message, error) {
	m := &protocol.Message{Conv: conv, Seq: seq}
	if len(v) < 2 || (v[0] != rowFormat && v[0] != rowFormat1) {
		return nil, fmt.Errorf("%w: (%s, %d): bad header", ErrCorrupt, conv, seq)
	}
	format, flags := v[0], v[1]
	m.Deleted = flags&flagDeleted != 0
	v = v[2:]
	nums := []*uint64{&m.EditSeq, &m.Ref}
	strs := []*string{&m.Sender, &m.ClientID, &m.TS, &m.Kind}
	if format == rowFormat {
		nums = append(nums, &m.ReplyTo, &m.Thread, &m.ThreadCount, &m.ThreadLastSeq)
		strs = append(strs, &m.DeletedBy)
		if flags&flagQuote != 0 {
			m.Quote = &protocol.Quote{Seq: m.ReplyTo, Deleted: flags&flagQuoteDeleted != 0}
			// ReplyTo is read below; Seq is set once it is.
			strs = append(strs, &m.Quote.Sender, &m.Quote.Kind, &m.Quote.Snippet)
		}
	}
	var ok bool
	for _, dst := range nums {
		if *dst, v, ok = uvarint(v); !ok {
			return nil, fmt.Errorf("%w: (%s, %d): number field", ErrCorrupt, conv, seq)
		}
	}
	for _, dst := range strs {
		if *dst, v, ok = readString(v); !ok {
			return nil, fmt.Errorf("%w: (%s, %d): string field", ErrCorrupt, conv, seq)
		}
	}
	if format == rowFormat {
		if m.Quote != nil {
			m.Quote.Seq = m.ReplyTo
		}
		var n uint64
		if n, v, ok = uvarint(v); !ok || n > maxDecodedMention {
			return nil, fmt.Errorf("%w: (%s, %d): mentions", ErrCorrupt, conv, seq)
		}
		if n > 0 {
			m.Mentions = make([]string, n)
		}
		for i := range m.Mentions {
			if m.Mentions[i], v, ok = readString(v); !ok {
				return nil, fmt.Errorf("%w: (%s, %d): mention", ErrCorrupt, conv, seq)
			}
		}
		if flags&flagExpires != 0 {
			if m.ExpiresAt, v, ok = readString(v); !ok {
				return nil, fmt.Errorf("%w: (%s, %d): expires_at", ErrCorrupt, conv, seq)
			}
		}
	}
	m.Body = append([]byte(nil), v...)
	return m, nil
}

func readString(v []byte) (string, []byte, bool) {
	n, v, ok := uvarint(v)
	if !ok || n > uint64(len(v)) {
		return "", nil, false
	}
	return string(v[:n]), v[n:], true
}

func uvarint(b []byte) (uint64, []byte, bool) {
	x, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, false
	}
	return x, b[n:], true
}
