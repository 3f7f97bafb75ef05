package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/attachments"
	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/services/erase"
)

// archive is an export archive, parsed.
type archive struct {
	header   map[string]any
	convs    []protocol.Conversation
	messages []protocol.Message
	end      map[string]any
}

func parseArchive(t testing.TB, data []byte) archive {
	t.Helper()
	var a archive
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Type         string                 `json:"type"`
			Conversation *protocol.Conversation `json:"conversation"`
			Message      *protocol.Message      `json:"message"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("archive line %q: %v", sc.Text(), err)
		}
		var raw map[string]any
		_ = json.Unmarshal(sc.Bytes(), &raw)
		switch line.Type {
		case "export":
			a.header = raw
		case "conversation":
			a.convs = append(a.convs, *line.Conversation)
		case "message":
			a.messages = append(a.messages, *line.Message)
		case "end":
			a.end = raw
		default:
			t.Fatalf("archive line of type %q", line.Type)
		}
	}
	if a.header == nil || a.end == nil {
		t.Fatalf("archive without its header or end: %s", data)
	}
	return a
}

// A user exports their data (export) over a real socket, on both stores:
// the answer carries a signed URL of an NDJSON archive holding their
// conversations with their members, their own messages (not others'),
// with signed URLs of their attachments that serve the files; the
// operator's natter user export writes the same lines, attachments by id.
// Erasing the user then deletes the attachment and the archive.
func TestExport(t *testing.T) {
	eachStoreHeld(t, func(t *testing.T, store history.Store) {
		e := start(t, withFiles(t, attachments.Config{MaxSize: 1 << 20}), func(c *app.Config) { c.History = app.HistoryConfig{Store: store} })
		ctx := ctxT(t)
		alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
		g, err := alice.CreateGroup(ctx, "Team", "bob")
		if err != nil {
			t.Fatal(err)
		}
		d, err := bob.CreateDirect(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		id, err := alice.UploadBytes(ctx, "text/plain", "notes.txt", []byte("alice's notes"))
		if err != nil {
			t.Fatal(err)
		}
		withFile, err := alice.Send(ctx, g.Conv, "", body("with a file", id))
		if err != nil {
			t.Fatal(err)
		}
		sendText(t, bob, g.Conv, "bob's own words")
		own := sendText(t, alice, d.Conv, "alice in direct")

		res, err := alice.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.File.URL == "" || res.File.ContentType != attachments.ExportContentType || res.Conversations != 2 || res.Messages != 2 || res.Files != 1 {
			t.Fatalf("export_ready = %+v", res)
		}
		data, _, err := alice.Fetch(ctx, res.File.URL)
		if err != nil {
			t.Fatal(err)
		}
		a := parseArchive(t, data)
		if a.header["user"] != "alice" || len(a.convs) != 2 || len(a.messages) != 2 {
			t.Fatalf("archive: %s", data)
		}
		for _, c := range a.convs {
			if !slices.Equal(c.Members, []string{"alice", "bob"}) {
				t.Fatalf("conversation %s members %v", c.Conv, c.Members)
			}
		}
		for _, m := range a.messages {
			if m.Sender != "alice" || strings.Contains(string(m.Body), "bob's own") {
				t.Fatalf("the archive holds another's message: %+v", m)
			}
			if m.Seq == withFile.Seq {
				if len(m.Files) != 1 || m.Files[0].ID != id || m.Files[0].URL == "" {
					t.Fatalf("files of %d: %+v", m.Seq, m.Files)
				}
				got, _, err := alice.Fetch(ctx, m.Files[0].URL)
				if err != nil || string(got) != "alice's notes" {
					t.Fatalf("the archive's attachment URL serves %q, %v", got, err)
				}
			}
		}
		if !slices.ContainsFunc(a.messages, func(m protocol.Message) bool { return m.Seq == own && m.Conv == d.Conv }) {
			t.Fatalf("the archive lacks alice's direct message %d", own)
		}

		// The operator's export (natter user export): the same, by id.
		opNC, opJS := e.operatorJS(t)
		convs, err := conversation.New(ctx, conversation.Config{}, opJS)
		if err != nil {
			t.Fatal(err)
		}
		x := &erase.Exporter{Convs: convs, Pages: history.NewRemote(opNC, 10*time.Second), Now: func() string { return "now" }}
		var buf bytes.Buffer
		n, err := x.Export(ctx, &buf, "alice")
		if err != nil {
			t.Fatal(err)
		}
		op := parseArchive(t, buf.Bytes())
		if n.Conversations != 2 || n.Messages != 2 || len(op.messages) != 2 {
			t.Fatalf("operator's export: %+v %s", n, buf.Bytes())
		}
		for _, m := range op.messages {
			if m.Seq == withFile.Seq && (len(m.Files) != 1 || m.Files[0].ID != id || m.Files[0].URL != "") {
				t.Fatalf("operator's export files: %+v", m.Files)
			}
		}
		// A bound too small for the archive fails rather than truncating.
		if _, err := x.Export(ctx, &erase.LimitWriter{W: &buf, N: 100}, "alice"); !errors.Is(err, erase.ErrExportTooLarge) {
			t.Fatalf("export past its bound: %v", err)
		}

		// Erasing alice deletes her attachment and her archive.
		if _, err := alice.DeleteAccount(ctx); err != nil {
			t.Fatal(err)
		}
		rep, err := erase.Request(ctx, opNC, "run", "alice")
		if err != nil {
			t.Fatal(err)
		}
		if rep.Attachments != 2 || rep.AttachmentsSkipped {
			t.Fatalf("attachments erased: %+v", rep)
		}
		if _, _, err := bob.Fetch(ctx, withFile.Files[0].URL); err == nil {
			t.Fatal("alice's attachment is still served after her erasure")
		}
		if _, _, err := bob.Fetch(ctx, res.File.URL); err == nil {
			t.Fatal("alice's archive is still served after her erasure")
		}
	})
}
