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
const (
	tagRow   = 'm'
	tagPlain = 'p'
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

// Row values: a format byte, a flags byte, EditSeq and Ref as uvarints,
// Sender, ClientID, TS and Kind as uvarint-length-prefixed strings, then the
// Body bytes to the end. Body is kept exactly as received: JSON encoding
// would compact and re-escape it.
const (
	rowFormat   = 1
	flagDeleted = 1 << 0
)

func encodeRow(m *protocol.Message) []byte {
	n := 2 + 2*binary.MaxVarintLen64 + 4*binary.MaxVarintLen16 +
		len(m.Sender) + len(m.ClientID) + len(m.TS) + len(m.Kind) + len(m.Body)
	b := make([]byte, 0, n)
	var flags byte
	if m.Deleted {
		flags |= flagDeleted
	}
	b = append(b, rowFormat, flags)
	b = binary.AppendUvarint(b, m.EditSeq)
	b = binary.AppendUvarint(b, m.Ref)
	for _, s := range []string{m.Sender, m.ClientID, m.TS, m.Kind} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return append(b, m.Body...)
}

// decodeRow decodes v, which the caller may reuse afterwards: nothing of
// the result aliases it.
func decodeRow(conv string, seq uint64, v []byte) (*protocol.Message, error) {
	m := &protocol.Message{Conv: conv, Seq: seq}
	if len(v) < 2 || v[0] != rowFormat {
		return nil, fmt.Errorf("%w: (%s, %d): bad header", ErrCorrupt, conv, seq)
	}
	m.Deleted = v[1]&flagDeleted != 0
	v = v[2:]
	var ok bool
	if m.EditSeq, v, ok = uvarint(v); !ok {
		return nil, fmt.Errorf("%w: (%s, %d): edit seq", ErrCorrupt, conv, seq)
	}
	if m.Ref, v, ok = uvarint(v); !ok {
		return nil, fmt.Errorf("%w: (%s, %d): ref", ErrCorrupt, conv, seq)
	}
	for _, dst := range []*string{&m.Sender, &m.ClientID, &m.TS, &m.Kind} {
		var n uint64
		if n, v, ok = uvarint(v); !ok || n > uint64(len(v)) {
			return nil, fmt.Errorf("%w: (%s, %d): string field", ErrCorrupt, conv, seq)
		}
		*dst, v = string(v[:n]), v[n:]
	}
	m.Body = append([]byte(nil), v...)
	return m, nil
}

func uvarint(b []byte) (uint64, []byte, bool) {
	x, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, false
	}
	return x, b[n:], true
}
