package natsrv

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats-server/v2/server"
)

// levelTrace is the slog level used for NATS trace lines, below Debug.
const levelTrace = slog.LevelDebug - 4

// slogLogger bridges the NATS server's printf-style logging into slog.
// NATS calls Fatalf when the server cannot go on (listener or JetStream
// failure); the default NATS logger then exits the process, this one logs
// and reports the failure on fatal so Start can return an error instead.
type slogLogger struct {
	log   *slog.Logger
	fatal chan error // buffered 1; the first fatal error wins
}

var _ server.Logger = (*slogLogger)(nil)

func newSlogLogger(log *slog.Logger) *slogLogger {
	return &slogLogger{log: log, fatal: make(chan error, 1)}
}

func (l *slogLogger) Noticef(format string, v ...any) { l.logf(slog.LevelInfo, format, v) }
func (l *slogLogger) Warnf(format string, v ...any)   { l.logf(slog.LevelWarn, format, v) }
func (l *slogLogger) Errorf(format string, v ...any)  { l.logf(slog.LevelError, format, v) }
func (l *slogLogger) Debugf(format string, v ...any)  { l.logf(slog.LevelDebug, format, v) }
func (l *slogLogger) Tracef(format string, v ...any)  { l.logf(levelTrace, format, v) }

func (l *slogLogger) Fatalf(format string, v ...any) {
	msg := RedactURLs(fmt.Sprintf(format, v...))
	l.log.Error(msg, "fatal", true)
	select {
	case l.fatal <- fmt.Errorf("%w: %s", ErrNotReady, msg):
	default:
	}
}

func (l *slogLogger) logf(level slog.Level, format string, v []any) {
	// Logging has no caller context; Background only feeds the handler.
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	// The server's lines can name route or client URLs with credentials.
	l.log.Log(ctx, level, RedactURLs(fmt.Sprintf(format, v...)))
}
