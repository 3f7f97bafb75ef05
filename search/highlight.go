package search

import (
	"html"
	"sort"
	"strings"
	"unicode/utf8"
)

// Span is a matched range of a text, in bytes.
type Span struct{ Start, End int }

// Highlight returns the fragment of text around its first matched span,
// about FragmentBytes long, as HTML: every span within it wrapped in
// <mark>…</mark>, the rest escaped. It returns "" without a span. A
// backend that knows where its matches are (Bleve's term locations) makes
// its highlights with it.
func Highlight(text string, spans []Span) string {
	spans = clean(text, spans)
	if len(spans) == 0 {
		return ""
	}
	// The window starts a little before the first match, at a rune and,
	// when one is near, a word boundary.
	from := max(0, spans[0].Start-FragmentBytes/4)
	if from > 0 {
		if i := strings.LastIndexAny(text[from:spans[0].Start], " \t\n"); i >= 0 {
			from += i + 1
		}
		for from > 0 && !utf8.RuneStart(text[from]) {
			from++
		}
	}
	to := min(len(text), from+FragmentBytes)
	if to < spans[0].End {
		to = spans[0].End
	}
	for to < len(text) && !utf8.RuneStart(text[to]) {
		to++
	}
	var b strings.Builder
	if from > 0 {
		b.WriteString("…")
	}
	at := from
	for _, s := range spans {
		if s.Start < at || s.End > to {
			continue
		}
		b.WriteString(html.EscapeString(text[at:s.Start]))
		b.WriteString("<mark>")
		b.WriteString(html.EscapeString(text[s.Start:s.End]))
		b.WriteString("</mark>")
		at = s.End
	}
	b.WriteString(html.EscapeString(text[at:to]))
	if to < len(text) {
		b.WriteString("…")
	}
	return b.String()
}

// clean sorts spans, drops those outside text or not on rune boundaries,
// and merges overlapping ones.
func clean(text string, spans []Span) []Span {
	out := make([]Span, 0, len(spans))
	for _, s := range spans {
		if s.Start < 0 || s.End > len(text) || s.Start >= s.End {
			continue
		}
		if !utf8.RuneStart(text[s.Start]) || (s.End < len(text) && !utf8.RuneStart(text[s.End])) {
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	merged := out[:0]
	for _, s := range out {
		if n := len(merged); n > 0 && s.Start <= merged[n-1].End {
			merged[n-1].End = max(merged[n-1].End, s.End)
			continue
		}
		merged = append(merged, s)
	}
	return merged
}
