package protocol

import (
	"strings"
	"testing"
	"time"
)

func TestExpiresAt(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 500, time.UTC)
	soon := FormatTime(now.Add(time.Minute))
	late := FormatTime(now.Add(48 * time.Hour))
	for _, tc := range []struct {
		name  string
		ttl   int64
		limit string
		want  string
	}{
		{"off", 0, "", ""},
		{"ttl", 86400, "", FormatTime(now.Add(24 * time.Hour))},
		{"bounded by an earlier target", 86400, soon, soon},
		{"target later than the ttl", 86400, late, FormatTime(now.Add(24 * time.Hour))},
		{"no ttl, expiring target", 0, soon, soon},
	} {
		if got := ExpiresAt(now, tc.ttl, tc.limit); got != tc.want {
			t.Errorf("%s: ExpiresAt = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := Earlier("", soon); got != soon {
		t.Errorf("Earlier(never, soon) = %q", got)
	}
	if got := Earlier(late, soon); got != soon {
		t.Errorf("Earlier(late, soon) = %q", got)
	}
}

func TestTTLHeaderRoundsUp(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{{2 * time.Second, "2"}, {2*time.Second + time.Millisecond, "3"}, {0, "1"}, {-time.Second, "1"}} {
		got, ok := TTLHeader(FormatTime(now.Add(tc.in)), now)
		if !ok || got != tc.want {
			t.Errorf("TTLHeader(now+%v) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	if _, ok := TTLHeader("", now); ok {
		t.Error("TTLHeader of no expiry is set")
	}
}

func TestValidTTL(t *testing.T) {
	for _, ttl := range []int64{0, 3600, 86400, 604800, 7776000} {
		if !ValidTTL(ttl, 0) {
			t.Errorf("%d refused", ttl)
		}
	}
	for _, ttl := range []int64{-1, 2, 60, 3601} {
		if ValidTTL(ttl, 0) {
			t.Errorf("%d allowed", ttl)
		}
	}
	if !ValidTTL(2, 2) || ValidTTL(3, 2) {
		t.Error("the test value is not the one extra value")
	}
}

// The fast decoder and the encoders carry expires_at as encoding/json does.
func TestEnvelopeExpiresAt(t *testing.T) {
	data := []byte(`{"sender":"u1","client_id":"c","ts":"2026-12-03T10:00:00Z","expires_at":"2026-12-03T11:00:00Z","body":{"text":"hi"}}`)
	var fast Envelope
	if !decodeEnvelopeFast(data, &fast) || fast.ExpiresAt != "2026-12-03T11:00:00Z" {
		t.Fatalf("fast decode: %+v", fast)
	}
	e, err := DecodeEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	m := e.Message("c1", 5, "")
	if m.ExpiresAt != e.ExpiresAt {
		t.Fatalf("Message lost expires_at: %+v", m)
	}
	if !m.Expired(time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC)) || m.Expired(time.Date(2026, 12, 3, 10, 59, 0, 0, time.UTC)) {
		t.Fatal("Expired is wrong around expires_at")
	}
	frame := string(AppendMessageFrame(nil, m))
	if want := `,"expires_at":"2026-12-03T11:00:00Z","prev":0,"body"`; !strings.Contains(frame, want) {
		t.Fatalf("push frame %s lacks %s", frame, want)
	}
}
