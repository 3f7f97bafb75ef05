package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode"
)

// MaxSnippetRunes bounds the text of a preview or a quote.
const MaxSnippetRunes = 140

// Snippet is the short text that stands for a message in previews and
// quotes: the body's "text" string with runs of white space folded to one
// space, cut to MaxSnippetRunes runes; for a body without text, the kind
// of message ("message" for a plain one).
func Snippet(body json.RawMessage, kind string) string {
	if text, ok := bodyText(body); ok && text != "" {
		return foldSnippet(text)
	}
	if kind == KindMessage {
		return "message"
	}
	return kind
}

// bodyText returns the body's top-level "text" string.
func bodyText(body json.RawMessage) (string, bool) {
	if !bytes.Contains(body, []byte(`"text"`)) {
		return "", false
	}
	var b struct {
		Text *string `json:"text"`
	}
	if json.Unmarshal(body, &b) != nil || b.Text == nil {
		return "", false
	}
	return *b.Text, true
}

func foldSnippet(text string) string {
	var sb strings.Builder
	sb.Grow(min(len(text), MaxSnippetRunes*4))
	n, space := 0, false
	for _, r := range text {
		if unicode.IsSpace(r) {
			space = sb.Len() > 0
			continue
		}
		if unicode.IsControl(r) {
			continue
		}
		if space {
			if n++; n > MaxSnippetRunes {
				break
			}
			sb.WriteByte(' ')
			space = false
		}
		if n++; n > MaxSnippetRunes {
			break
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
