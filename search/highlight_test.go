package search

import "testing"

func TestHighlight(t *testing.T) {
	for _, tc := range []struct {
		text  string
		spans []Span
		want  string
	}{
		{"hello world", []Span{{6, 11}}, "hello <mark>world</mark>"},
		{"a<b & c", []Span{{0, 1}}, "<mark>a</mark>&lt;b &amp; c"},
		{"x y x", []Span{{4, 5}, {0, 1}, {0, 1}}, "<mark>x</mark> y <mark>x</mark>"},
		{"no match", nil, ""},
		{"héllo", []Span{{2, 3}}, ""}, // not on a rune boundary
		{"ab", []Span{{0, 9}}, ""},
	} {
		if got := Highlight(tc.text, tc.spans); got != tc.want {
			t.Errorf("Highlight(%q, %v) = %q, want %q", tc.text, tc.spans, got, tc.want)
		}
	}
}
