package erase

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// A user's export archive is NDJSON: one JSON object per line, each with
// a "type" (docs/operations.md "Exporting a user"):
//
//	{"type":"export","version":1,"user":"alice","created":"<RFC 3339>"}
//	{"type":"conversation","conversation":{...}}      one per conversation: metadata and members
//	{"type":"message","message":{...}}                one per row the user sent, ascending seq per conversation
//	{"type":"end","conversations":2,"messages":41,"files":3}
//
// A message row is as pages serve it (edits applied, tombstones marked);
// its "files" carry signed URLs when the exporter can sign them, and the
// attachment ids otherwise.

// ExportStore keeps export archives for download: the attachment store
// (attachments.Service).
type ExportStore interface {
	Files
	// PutExport stores uid's archive and returns it with a signed URL.
	PutExport(ctx context.Context, uid, name string, data []byte) (protocol.File, error)
	// MaxExport bounds an archive.
	MaxExport() int64
}

// ExportResult answers chat.api.erase.export: the archive's file, with
// its signed URL, and what it holds.
type ExportResult struct {
	File   protocol.File `json:"file"`
	Counts ExportCounts  `json:"counts"`
}

// ErrNoExports: this process has no attachment store to put archives in.
var ErrNoExports = errors.New("erase: exports need the attachment store, which this process does not have")

// Export builds uid's archive in memory (at most MaxExport bytes, else
// ErrExportTooLarge), stores it and returns its file.
func (e *Eraser) Export(ctx context.Context, uid string) (*ExportResult, error) {
	if e.cfg.Exports == nil {
		return nil, ErrNoExports
	}
	x := &Exporter{Convs: e.cfg.Convs, Pages: e.cfg.Pages, Files: e.cfg.Exports,
		Now: func() string { return protocol.FormatTime(e.cfg.Now()) }}
	var buf bytes.Buffer
	n, err := x.Export(ctx, &LimitWriter{W: &buf, N: e.cfg.Exports.MaxExport()}, uid)
	if err != nil {
		return nil, err
	}
	f, err := e.cfg.Exports.PutExport(ctx, uid, "natter-export-"+uid+".ndjson", buf.Bytes())
	if err != nil {
		return nil, err
	}
	return &ExportResult{File: f, Counts: n}, nil
}

// ExportVersion is the archive format's version.
const ExportVersion = 1

// Files signs URLs for the attachments a message of conv references
// (attachments.Service.Files).
type Files interface {
	Files(ctx context.Context, conv string, ids []string) ([]protocol.File, error)
}

// Exporter writes archives. Files is optional: without it messages carry
// attachment ids only.
type Exporter struct {
	Convs *conversation.Store
	Pages history.Pages
	Files Files
	Now   func() string
}

// ExportCounts say what an archive holds.
type ExportCounts struct {
	Conversations int `json:"conversations"`
	Messages      int `json:"messages"`
	Files         int `json:"files"`
}

// exportLine is one line of the archive.
type exportLine struct {
	Type         string                 `json:"type"`
	Version      int                    `json:"version,omitempty"`
	User         string                 `json:"user,omitempty"`
	Created      string                 `json:"created,omitempty"`
	Conversation *protocol.Conversation `json:"conversation,omitempty"`
	Message      *protocol.Message      `json:"message,omitempty"`
	*ExportCounts
}

// ErrExportTooLarge: the archive outgrew the writer's bound.
var ErrExportTooLarge = errors.New("erase: export archive too large")

// Export writes uid's archive to w, a page of messages at a time: what it
// holds in memory is one page, whatever the archive's size.
func (x *Exporter) Export(ctx context.Context, w io.Writer, uid string) (ExportCounts, error) {
	var n ExportCounts
	if !protocol.ValidID(uid) {
		return n, fmt.Errorf("%w: %q", ErrBadUser, uid)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(exportLine{Type: "export", Version: ExportVersion, User: uid, Created: x.Now()}); err != nil {
		return n, err
	}
	convs, err := x.Convs.UserConversations(ctx, uid)
	if err != nil {
		return n, fmt.Errorf("export: conversations of %s: %w", uid, err)
	}
	for _, conv := range convs {
		d, err := x.Convs.Get(ctx, conv)
		if errors.Is(err, conversation.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("export: read %s: %w", conv, err)
		}
		if !d.IsMember(uid) {
			continue // the index may still name one just left
		}
		c := d.ProtocolFor(uid, len(d.Members))
		c.Members = d.SortedMembers()
		if err := enc.Encode(exportLine{Type: "conversation", Conversation: c}); err != nil {
			return n, err
		}
		n.Conversations++
		var after uint64
		for {
			page, more, err := x.Pages.After(ctx, conv, after, pageSize)
			if err != nil {
				return n, fmt.Errorf("export: read %s: %w", conv, err)
			}
			for _, m := range page {
				if m.Sender != uid || m.Kind == protocol.KindEvent {
					continue
				}
				row := *m // pages' rows are shared: a copy to add files to
				row.Prev = 0
				if ids, ok := protocol.AttachmentIDs(m.Body); ok && len(ids) > 0 && !m.Deleted {
					if row.Files, err = x.files(ctx, conv, ids); err != nil {
						return n, err
					}
					n.Files += len(row.Files)
				}
				if err := enc.Encode(exportLine{Type: "message", Message: &row}); err != nil {
					return n, err
				}
				n.Messages++
			}
			if !more || len(page) == 0 {
				break
			}
			after = page[len(page)-1].Seq
		}
	}
	if err := enc.Encode(exportLine{Type: "end", ExportCounts: &n}); err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// files signs the URLs of ids, or lists the ids without an exporter that
// can sign.
func (x *Exporter) files(ctx context.Context, conv string, ids []string) ([]protocol.File, error) {
	if x.Files == nil {
		out := make([]protocol.File, len(ids))
		for i, id := range ids {
			out[i] = protocol.File{ID: id}
		}
		return out, nil
	}
	f, err := x.Files.Files(ctx, conv, ids)
	if err != nil {
		return nil, fmt.Errorf("export: attachments of %s: %w", conv, err)
	}
	return f, nil
}

// LimitWriter fails with ErrExportTooLarge once more than N bytes were
// written to W.
type LimitWriter struct {
	W io.Writer
	N int64
}

func (l *LimitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.N {
		return 0, ErrExportTooLarge
	}
	l.N -= int64(len(p))
	return l.W.Write(p)
}
