package natsrv

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactURLs(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                    "nats://127.0.0.1:4222",
		"nats://operator:s3cr3t@h:4222":            "nats://operator:xxxxx@h:4222",
		"tls://gateway:p%40ss@h:4222,nats://u:p@g": "tls://gateway:xxxxx@h:4222,nats://u:xxxxx@g",
		"route nats-route://route:pw@n2:6222 down": "route nats-route://route:xxxxx@n2:6222 down",
		"nats://:tokenonly@h:4222":                 "nats://:xxxxx@h:4222",
	} {
		if got := RedactURLs(in); got != want {
			t.Errorf("RedactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestServerLogsNoPassword: the embedded server's own log lines (bridged
// into slog, at trace level) and ours never carry a URL's password.
func TestServerLogsNoPassword(t *testing.T) {
	var buf bytes.Buffer
	l := newSlogLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: levelTrace})))
	l.Noticef("connecting to %s", "nats-route://route:hunter2pw@n2:6222")
	l.Errorf("%s", "nats://operator:hunter2pw@h:4222")
	l.Fatalf("bad %s", "nats://operator:hunter2pw@h:4222")
	if strings.Contains(buf.String(), "hunter2pw") {
		t.Fatalf("password logged:\n%s", buf.String())
	}
}
