package attachments_test

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/attachments"
	"github.com/natter-chat/natter/attachments/fsstore"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newService(t *testing.T, cfg attachments.Config) (*attachments.Service, *fsstore.Store, *clock) {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
	kv, err := js.CreateKeyValue(t.Context(), schema.AttachmentsBucket(schema.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now()}
	store, err := fsstore.New(fsstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Now = clk.Now
	return attachments.New(cfg, store, kv), store, clk
}

// upload asks for an upload and stores its bytes as the client would.
func upload(t *testing.T, s *attachments.Service, store *fsstore.Store, uid, ct string, data []byte) string {
	t.Helper()
	up, err := s.NewUpload(t.Context(), uid, ct, int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(t.Context(), up.ID, ct, data); err != nil {
		t.Fatal(err)
	}
	return up.ID
}

func TestQuotaCountsUploadsAndComesBack(t *testing.T) {
	s, store, _ := newService(t, attachments.Config{Quota: 10})
	ctx := t.Context()
	a := upload(t, s, store, "alice", "text/plain", []byte("123456"))
	if _, err := s.NewUpload(ctx, "alice", "text/plain", 5, ""); !errors.Is(err, attachments.ErrQuota) {
		t.Fatalf("6+5 bytes of a 10 byte quota: %v; want ErrQuota", err)
	}
	if _, err := s.NewUpload(ctx, "bob", "text/plain", 10, ""); err != nil {
		t.Fatalf("bob's quota is his own: %v", err)
	}
	if _, err := s.Attach(ctx, "alice", "c1", []string{a}, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "c2", []string{a}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Used(ctx, "alice"); n != 6 {
		t.Fatalf("a delete in another conversation freed bytes: %d used", n)
	}
	if err := s.Delete(ctx, "c1", []string{a}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Used(ctx, "alice"); n != 0 {
		t.Fatalf("after the delete %d bytes used; want 0", n)
	}
	if _, err := store.Stat(ctx, a); !errors.Is(err, attachments.ErrNotFound) {
		t.Fatalf("object after delete: %v", err)
	}
}

func TestAttachChecks(t *testing.T) {
	s, store, _ := newService(t, attachments.Config{MaxPerMessage: 2})
	ctx := t.Context()
	a := upload(t, s, store, "alice", "text/plain", []byte("abc"))
	b := upload(t, s, store, "alice", "text/plain", []byte("def"))
	c := upload(t, s, store, "alice", "text/plain", []byte("ghi"))
	lying, err := s.NewUpload(ctx, "alice", "image/png", 3, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, lying.ID, "text/plain", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, uid, conv string
		ids             []string
		want            error
	}{
		{"too many", "alice", "c1", []string{a, b, c}, attachments.ErrBadRequest},
		{"twice", "alice", "c1", []string{a, a}, attachments.ErrBadRequest},
		{"not an id", "alice", "c1", []string{"att_../x"}, attachments.ErrBadRequest},
		{"someone else's", "bob", "c1", []string{a}, attachments.ErrForbidden},
		{"unknown", "alice", "c1", []string{"att_zzzz"}, attachments.ErrForbidden},
		{"stored as another type", "alice", "c1", []string{lying.ID}, attachments.ErrBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Attach(ctx, tc.uid, tc.conv, tc.ids, ""); !errors.Is(err, tc.want) {
				t.Fatalf("Attach = %v; want %v", err, tc.want)
			}
		})
	}
	files, err := s.Attach(ctx, "alice", "c1", []string{a, b}, "")
	if err != nil || len(files) != 2 || files[0].ID != a || files[0].URL == "" || files[0].ThumbURL != "" {
		t.Fatalf("Attach = %+v, %v", files, err)
	}
	if _, err := s.Attach(ctx, "alice", "c1", []string{a}, ""); err != nil {
		t.Fatalf("again in the same conversation: %v", err)
	}
	if _, err := s.Attach(ctx, "alice", "c2", []string{a}, ""); !errors.Is(err, attachments.ErrForbidden) {
		t.Fatalf("in another conversation: %v; want ErrForbidden", err)
	}
	if got, _ := s.Files(ctx, "c2", []string{a, b}); len(got) != 0 {
		t.Fatalf("Files of another conversation = %+v; want none", got)
	}
	if got, _ := s.Files(ctx, "c1", []string{a, c, "att_zzzz"}); len(got) != 1 || got[0].ID != a {
		t.Fatalf("Files = %+v; want only %s (c is not bound)", got, a)
	}
}

func TestSweepDeletesOnlyAbandonedUploads(t *testing.T) {
	s, store, clk := newService(t, attachments.Config{Abandoned: time.Hour})
	ctx := t.Context()
	kept := upload(t, s, store, "alice", "text/plain", []byte("kept"))
	if _, err := s.Attach(ctx, "alice", "c1", []string{kept}, ""); err != nil {
		t.Fatal(err)
	}
	old := upload(t, s, store, "alice", "text/plain", []byte("old"))
	clk.add(50 * time.Minute)
	young := upload(t, s, store, "alice", "text/plain", []byte("young"))
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("Sweep before the bound = %d, %v", n, err)
	}
	clk.add(20 * time.Minute)
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	for id, want := range map[string]bool{kept: true, old: false, young: true} {
		if _, err := store.Stat(ctx, id); (err == nil) != want {
			t.Errorf("%s kept %v; want %v", id, err == nil, want)
		}
	}
	if n, _ := s.Used(ctx, "alice"); n != int64(len("kept")+len("young")) {
		t.Fatalf("%d bytes used after the sweep", n)
	}
}

func TestThumbnail(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 1000, 250))
	var b bytes.Buffer
	if err := jpeg.Encode(&b, src, nil); err != nil {
		t.Fatal(err)
	}
	out, err := attachments.Thumbnail(b.Bytes(), "image/jpeg", 320)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(out))
	if err != nil || cfg.Width != 320 || cfg.Height != 80 {
		t.Fatalf("thumbnail %dx%d, %v; want 320x80", cfg.Width, cfg.Height, err)
	}
	if _, err := attachments.Thumbnail([]byte("not an image"), "image/jpeg", 320); err == nil {
		t.Fatal("a thumbnail of garbage")
	}
}
