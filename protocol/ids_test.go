package protocol

import (
	"strings"
	"testing"
)

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"u1", true},
		{"A-z_09", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"a.b", false},
		{"a*", false},
		{"a>", false},
		{"a b", false},
		{"é", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := ValidID(tt.id); got != tt.want {
				t.Fatalf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func TestValidClientID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"6f1c2b1e-0b7a-4c39-9d5a-2b7a1c9e0f11", true},
		{"svc:1", true},
		{"", false},
		{"a b", false},
		{"a\r\nNats-Msg-Id: x", false},
		{strings.Repeat("x", 129), false},
	}
	for _, tt := range tests {
		if got := ValidClientID(tt.id); got != tt.want {
			t.Errorf("ValidClientID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}
