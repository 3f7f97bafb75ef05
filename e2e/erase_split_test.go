package e2e

import (
	"bytes"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/services/erase"
)

// In a split deployment the history role erases users with the gateways'
// attachment store (natter history --attachments ...): an erased user's
// files are deleted, not left behind as "skipped".
func TestSplitHistoryErasesAttachments(t *testing.T) {
	shared := t.TempDir()
	e := start(t, func(c *app.Config) {
		c.Roles = app.Roles{Gateway: true}
		c.History = app.HistoryConfig{}
		c.Attachments.Dir = shared
	})
	startWith(t, app.Config{
		Roles: app.Roles{History: true}, HTTPAddr: "127.0.0.1:0",
		NATSURL:       e.app.NATS().RoleURL(natsrv.RoleHistory),
		EraserNATSURL: e.app.NATS().RoleURL(schema.RoleEraser),
		History:       app.HistoryConfig{Dir: t.TempDir(), NoSync: true},
		Attachments:   app.AttachmentsConfig{Dir: shared},
		Logger:        testLogger(),
	})
	ctx := longCtx(t)
	alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
	g, err := alice.CreateGroup(ctx, "files", "bob")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("alice's private file")
	id, err := alice.UploadBytes(ctx, "text/plain", "a.txt", data)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := alice.Send(ctx, g.Conv, "", body("see", id))
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := bob.Fetch(ctx, ack.Files[0].URL); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("bob fetched %q, %v", got, err)
	}
	if n := filesNamed(t, shared, id); n == 0 {
		t.Fatalf("no file of %s under the shared directory", id)
	}

	if _, err := alice.DeleteAccount(ctx); err != nil {
		t.Fatal(err)
	}
	opNC, _ := e.operatorJS(t)
	rep, err := erase.Request(ctx, opNC, schema.EraseEndpointRun, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if rep.State != erase.StateDone || rep.AttachmentsSkipped || rep.Attachments != 1 {
		t.Fatalf("report %+v; want the one attachment deleted", rep)
	}
	if n := filesNamed(t, shared, id); n != 0 {
		t.Fatalf("%d files of %s left under the shared directory", n, id)
	}
	if _, _, err := bob.Fetch(ctx, ack.Files[0].URL); err == nil {
		t.Fatal("the erased user's file is still served")
	}
}

// filesNamed counts the files under dir whose name holds id.
func filesNamed(t testing.TB, dir, id string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(filepath.Base(p), id) {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
