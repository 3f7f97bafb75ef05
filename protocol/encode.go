package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// AppendMessage appends m encoded as a JSON object to dst: the same bytes
// as a json.Encoder with SetEscapeHTML(false) writes for it (without the
// newline), at a fraction of the cost and with no allocation. Sync and
// history pages and the history API encode their items with it.
//
// Strings are escaped as encoding/json escapes them: control characters,
// '"' and '\\', U+2028 and U+2029, and each byte of invalid UTF-8 becomes
// \ufffd; '<', '>' and '&' are kept. The body is copied as is when it
// holds no whitespace outside its strings, else compacted as
// encoding/json compacts a json.RawMessage; it must be valid JSON (every
// stored body is: envelopes are checked before they are stored or read).
// A nil or empty body is null.
func AppendMessage(dst []byte, m *Message) []byte {
	if m.Type != "" {
		dst = append(dst, `{"type":`...)
		dst = appendJSONString(dst, m.Type)
		dst = append(dst, `,"conv":`...)
	} else {
		dst = append(dst, `{"conv":`...)
	}
	dst = appendJSONString(dst, m.Conv)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, m.Seq, 10)
	dst = append(dst, `,"sender":`...)
	dst = appendJSONString(dst, m.Sender)
	dst = append(dst, `,"client_id":`...)
	dst = appendJSONString(dst, m.ClientID)
	dst = append(dst, `,"ts":`...)
	dst = appendJSONString(dst, m.TS)
	if m.Kind != "" {
		dst = append(dst, `,"kind":`...)
		dst = appendJSONString(dst, m.Kind)
	}
	if m.Ref != 0 {
		dst = append(dst, `,"ref":`...)
		dst = strconv.AppendUint(dst, m.Ref, 10)
	}
	dst = appendReplyFields(dst, m)
	dst = AppendExpiresAt(dst, m.ExpiresAt)
	dst = append(dst, `,"body":`...)
	dst = appendRawJSON(dst, m.Body)
	if m.EditSeq != 0 {
		dst = append(dst, `,"edit_seq":`...)
		dst = strconv.AppendUint(dst, m.EditSeq, 10)
	}
	if m.Deleted {
		dst = append(dst, `,"deleted":true`...)
	}
	if m.DeletedBy != "" {
		dst = append(dst, `,"deleted_by":`...)
		dst = appendJSONString(dst, m.DeletedBy)
	}
	if m.ThreadCount != 0 {
		dst = append(dst, `,"thread_count":`...)
		dst = strconv.AppendUint(dst, m.ThreadCount, 10)
	}
	if m.ThreadLastSeq != 0 {
		dst = append(dst, `,"thread_last_seq":`...)
		dst = strconv.AppendUint(dst, m.ThreadLastSeq, 10)
	}
	dst = append(dst, `,"prev":`...)
	dst = strconv.AppendUint(dst, m.Prev, 10)
	if len(m.Files) > 0 {
		dst = AppendFiles(dst, m.Files)
	}
	return append(dst, '}')
}

// appendReplyFields appends m's reply_to, quote, thread and mentions.
func appendReplyFields(dst []byte, m *Message) []byte {
	return AppendReplyFields(dst, m.ReplyTo, m.Quote, m.Thread, m.Mentions)
}

// AppendReplyFields appends ,"reply_to", ,"quote", ,"thread" and
// ,"mentions" in this order (the order of Message's and Envelope's
// fields), each only when set, as encoding/json with omitempty would.
func AppendReplyFields(dst []byte, replyTo uint64, quote *Quote, thread uint64, mentions []string) []byte {
	if replyTo != 0 {
		dst = append(dst, `,"reply_to":`...)
		dst = strconv.AppendUint(dst, replyTo, 10)
	}
	if q := quote; q != nil {
		dst = append(dst, `,"quote":{"seq":`...)
		dst = strconv.AppendUint(dst, q.Seq, 10)
		dst = append(dst, `,"sender":`...)
		dst = appendJSONString(dst, q.Sender)
		if q.Kind != "" {
			dst = append(dst, `,"kind":`...)
			dst = appendJSONString(dst, q.Kind)
		}
		dst = append(dst, `,"snippet":`...)
		dst = appendJSONString(dst, q.Snippet)
		if q.Deleted {
			dst = append(dst, `,"deleted":true`...)
		}
		dst = append(dst, '}')
	}
	if thread != 0 {
		dst = append(dst, `,"thread":`...)
		dst = strconv.AppendUint(dst, thread, 10)
	}
	if len(mentions) > 0 {
		dst = append(dst, `,"mentions":[`...)
		for i, u := range mentions {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, u)
		}
		dst = append(dst, ']')
	}
	return dst
}

// appendRawJSON appends raw, valid JSON, compacted.
func appendRawJSON(dst []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(dst, "null"...)
	}
	if !hasSpace(raw) {
		return append(dst, raw...)
	}
	b := bytes.NewBuffer(dst)
	if err := json.Compact(b, raw); err != nil {
		// Not JSON after all (the caller broke the contract): keep it
		// as it is rather than lose it.
		return append(dst, raw...)
	}
	return b.Bytes()
}

// hasSpace reports whether raw has whitespace outside its strings: what
// compacting would remove.
func hasSpace(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case ' ', '\t', '\n', '\r':
			return true
		case '"':
			// Skip the string; a backslash escapes the byte after it.
			for i++; i < len(raw); i++ {
				if c := raw[i]; c == '\\' {
					i++
				} else if c == '"' {
					break
				}
			}
		}
	}
	return false
}

// jsonSafe marks the ASCII bytes encoding/json writes as themselves in a
// string when it does not escape HTML.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as a JSON string the way encoding/json does
// with SetEscapeHTML(false); s may be any bytes.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
