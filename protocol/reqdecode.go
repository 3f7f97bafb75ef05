package protocol

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// DecodeRequest decodes a client frame (valid UTF-8 already) into req,
// which must be zero, exactly as json.Unmarshal would: the same Request
// when it decodes, the same error when it does not. The frames a busy
// connection sends (send, read, typing, delivered, ping) take a path
// without reflection (decodeRequestFast); anything else, including
// anything invalid, goes to json.Unmarshal.
func DecodeRequest(data []byte, req *Request) error {
	if decodeRequestFast(data, req) {
		return nil
	}
	// Decoded into a Request of its own, so that req does not escape
	// (json.Unmarshal's argument does) on the fast path either.
	tmp := new(Request)
	err := json.Unmarshal(data, tmp)
	*req = *tmp
	return err
}

// decodeRequestFast decodes the usual hot frame: an object whose keys are
// among type, id, conv, client_id, kind, body, ref, seq, reply_to, thread
// and resend, spelt so, whose strings have no escapes, whose integers are
// plain and in range, and whose body is an object. It validates all of
// data as JSON on the way and, when it reports true, has set req as
// json.Unmarshal would have (the last of repeated keys wins, the body is
// a copy). Anything else reports false, req then partly set.
func decodeRequestFast(data []byte, req *Request) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	for {
		key, n, ok := plainString(data, i)
		if !ok {
			return false
		}
		i = skipSpace(data, n)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipSpace(data, i+1)
		switch string(key) {
		case "type", "id", "conv", "client_id", "kind":
			s, n, ok := plainString(data, i)
			if !ok {
				return false
			}
			switch string(key) {
			case "type":
				req.Type = requestType(s)
			case "id":
				req.ID = string(s)
			case "conv":
				req.Conv = string(s)
			case "client_id":
				req.ClientID = string(s)
			default:
				req.Kind = string(s)
			}
			i = n
		case "ref", "seq":
			v, n, ok := plainInt(data, i)
			if !ok {
				return false
			}
			if string(key) == "ref" {
				req.Ref = v
			} else {
				req.Seq = v
			}
			i = n
		case "reply_to", "thread":
			v, n, ok := plainUint(data, i)
			if !ok {
				return false
			}
			if string(key) == "reply_to" {
				req.ReplyTo = v
			} else {
				req.Thread = v
			}
			i = n
		case "resend":
			switch {
			case i < len(data) && data[i] == 't':
				n, ok = skipLiteral(data, i, "true")
			case i < len(data) && data[i] == 'f':
				n, ok = skipLiteral(data, i, "false")
			default:
				ok = false
			}
			if !ok {
				return false
			}
			req.Resend = data[i] == 't'
			i = n
		case "body":
			if i >= len(data) || data[i] != '{' {
				return false
			}
			n, ok := skipValue(data, i, 0)
			if !ok {
				return false
			}
			req.Body = append(json.RawMessage(nil), data[i:n]...)
			i = n
		default:
			return false
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return skipSpace(data, i+1) == len(data)
		default:
			return false
		}
	}
}

// plainInt reads the integer at data[i] when it is a JSON number without
// fraction or exponent that fits an int64.
func plainInt(data []byte, i int) (int64, int, bool) {
	j := i
	if j < len(data) && data[j] == '-' {
		j++
	}
	_, j, ok := plainUint(data, j)
	if !ok {
		return 0, 0, false
	}
	v, err := strconv.ParseInt(string(data[i:j]), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return v, j, true
}

// requestType returns the type of a hot frame as its constant, so that
// decoding it allocates nothing; any other type is copied.
func requestType(s []byte) string {
	switch string(s) {
	case TypeSend:
		return TypeSend
	case TypeRead:
		return TypeRead
	case TypeTyping:
		return TypeTyping
	case TypeDelivered:
		return TypeDelivered
	case TypePing:
		return TypePing
	}
	return string(s)
}

// ScanFlat reads data when it is one JSON object whose keys have no
// escapes and whose values are strings of valid UTF-8 without escapes or
// control characters, non-negative integers that fit a uint64, true or false: it
// calls f with each key, in order, the value's kind ('"', '0', 't' or
// 'f') and its bytes (a string's without the quotes). It reports false
// when data is anything else, or as soon as f does. It lets the other
// fixed-form messages of the hot paths (a JetStream PubAck) be read
// without encoding/json's reflection.
func ScanFlat(data []byte, f func(key []byte, kind byte, val []byte) bool) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	for {
		key, n, ok := plainString(data, i)
		if !ok {
			return false
		}
		i = skipSpace(data, n)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipSpace(data, i+1)
		if i >= len(data) {
			return false
		}
		var val []byte
		kind := data[i]
		switch {
		case kind == '"':
			// Not valid UTF-8, encoding/json would decode it otherwise
			// (U+FFFD for each bad byte).
			if val, n, ok = plainString(data, i); ok && !utf8.Valid(val) {
				ok = false
			}
		case kind >= '0' && kind <= '9':
			kind = '0'
			if _, n, ok = plainUint(data, i); ok {
				val = data[i:n]
			}
		case kind == 't':
			n, ok = skipLiteral(data, i, "true")
		case kind == 'f':
			n, ok = skipLiteral(data, i, "false")
		default:
			ok = false
		}
		if !ok || !f(key, kind, val) {
			return false
		}
		i = skipSpace(data, n)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return skipSpace(data, i+1) == len(data)
		default:
			return false
		}
	}
}
