package protocol

import (
	"encoding/json"
	"math"
)

// decodeEnvelopeFast decodes the usual stored envelope without
// encoding/json's reflection: an object whose keys are among sender,
// client_id, ts, kind, expires_at, ref, reply_to, thread and body, whose strings have no escapes and
// whose ref is a plain integer. It validates all of data as JSON on the
// way (data must be valid UTF-8 already) and, when it reports true, has
// set e exactly as json.Unmarshal would have (the last of repeated keys
// wins, the body is a copy). Anything else, including anything invalid,
// reports false and leaves the decision to json.Unmarshal.
func decodeEnvelopeFast(data []byte, e *Envelope) bool {
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
		case "sender", "client_id", "ts", "kind", "expires_at":
			s, n, ok := plainString(data, i)
			if !ok {
				return false
			}
			switch string(key) {
			case "sender":
				e.Sender = string(s)
			case "client_id":
				e.ClientID = string(s)
			case "ts":
				e.TS = string(s)
			case "expires_at":
				e.ExpiresAt = string(s)
			default:
				e.Kind = string(s)
			}
			i = n
		case "ref", "reply_to", "thread":
			v, n, ok := plainUint(data, i)
			if !ok {
				return false
			}
			switch string(key) {
			case "ref":
				e.Ref = v
			case "reply_to":
				e.ReplyTo = v
			default:
				e.Thread = v
			}
			i = n
		case "body":
			n, ok := skipValue(data, i, 0)
			if !ok {
				return false
			}
			e.Body = append(json.RawMessage(nil), data[i:n]...)
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

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// plainString reads the string at data[i] when it has no escapes and no
// control characters: its contents and the index after it.
func plainString(data []byte, i int) ([]byte, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return data[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// plainUint reads the integer at data[i] when it is a JSON number without
// sign, fraction or exponent that fits a uint64.
func plainUint(data []byte, i int) (uint64, int, bool) {
	j := i
	var v uint64
	for j < len(data) && data[j] >= '0' && data[j] <= '9' {
		d := uint64(data[j] - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, 0, false
		}
		v = v*10 + d
		j++
	}
	if j == i || (data[i] == '0' && j > i+1) {
		return 0, 0, false
	}
	if j < len(data) && (data[j] == '.' || data[j] == 'e' || data[j] == 'E') {
		return 0, 0, false
	}
	return v, j, true
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// skipValue validates the JSON value at data[i] and returns the index
// after it.
func skipValue(data []byte, i, depth int) (int, bool) {
	if i >= len(data) {
		return 0, false
	}
	switch c := data[i]; {
	case c == '{':
		if depth++; depth > maxDepth {
			return 0, false
		}
		i = skipSpace(data, i+1)
		if i < len(data) && data[i] == '}' {
			return i + 1, true
		}
		for {
			n, ok := skipString(data, i)
			if !ok {
				return 0, false
			}
			i = skipSpace(data, n)
			if i >= len(data) || data[i] != ':' {
				return 0, false
			}
			if i, ok = skipValue(data, skipSpace(data, i+1), depth); !ok {
				return 0, false
			}
			i = skipSpace(data, i)
			if i >= len(data) {
				return 0, false
			}
			switch data[i] {
			case ',':
				i = skipSpace(data, i+1)
			case '}':
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == '[':
		if depth++; depth > maxDepth {
			return 0, false
		}
		i = skipSpace(data, i+1)
		if i < len(data) && data[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = skipValue(data, i, depth); !ok {
				return 0, false
			}
			i = skipSpace(data, i)
			if i >= len(data) {
				return 0, false
			}
			switch data[i] {
			case ',':
				i = skipSpace(data, i+1)
			case ']':
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == '"':
		return skipString(data, i)
	case c == 't':
		return skipLiteral(data, i, "true")
	case c == 'f':
		return skipLiteral(data, i, "false")
	case c == 'n':
		return skipLiteral(data, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(data, i)
	}
	return 0, false
}

func skipLiteral(data []byte, i int, lit string) (int, bool) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// skipString validates the string at data[i], escapes included.
func skipString(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return j + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			j++
			if j >= len(data) {
				return 0, false
			}
			switch data[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(data)-j <= 4 {
					return 0, false
				}
				for _, h := range data[j+1 : j+5] {
					if !isHex(h) {
						return 0, false
					}
				}
				j += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipNumber validates the number at data[i]: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(data []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		return i
	}
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		i = digits(i)
	default:
		return 0, false
	}
	if i < len(data) && data[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}
