package fsstore_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/natter-chat/natter/attachments/fsstore"
	"github.com/natter-chat/natter/attachments/storetest"
)

func TestConformance(t *testing.T) {
	s, err := fsstore.New(fsstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	storetest.Run(t, s, srv.URL, "fs")
}

func TestSecretKeptAcrossOpens(t *testing.T) {
	dir := t.TempDir()
	a2, _ := fsstore.New(fsstore.Config{Dir: dir, Now: fixed})
	b2, _ := fsstore.New(fsstore.Config{Dir: dir, Now: fixed})
	if x, y := mustGet(t, a2), mustGet(t, b2); x != y {
		t.Fatalf("two opens of one directory sign differently: %s vs %s", x, y)
	}
}

func fixed() time.Time { return time.Unix(1_800_000_000, 0) }

func mustGet(t *testing.T, s *fsstore.Store) string {
	t.Helper()
	u, err := s.PresignGet(t.Context(), "att_x", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
