package localstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"testing"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/history/storetest"
	"github.com/natter-chat/natter/protocol"
)

func open(t testing.TB, dir string) *localstore.Store {
	t.Helper()
	s, err := localstore.New(localstore.Config{
		Dir:          dir,
		CacheSize:    8 << 20,
		MemTableSize: 4 << 20,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) history.Store { return open(t, t.TempDir()) })
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	msgs := []*protocol.Message{
		{Conv: "c", Seq: 3, Sender: "u1", Body: []byte(`{"text":"hi"}`)},
		{Conv: "c", Seq: 9, Sender: "u1", Kind: protocol.KindEdit, Ref: 3, Body: []byte(`{"text":"ho"}`)},
	}
	if err := s.Append(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.After(ctx, "c", 0, 10); err != localstore.ErrClosed {
		t.Fatalf("After on a closed store: %v, want ErrClosed", err)
	}
	s = open(t, dir)
	got, _, err := s.After(ctx, "c", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0].Body) != `{"text":"ho"}` || got[0].EditSeq != 9 {
		t.Fatalf("after reopen: %+v", got)
	}
}

func TestInvalid(t *testing.T) {
	s := open(t, t.TempDir())
	long := string(make([]byte, 256))
	for _, m := range []*protocol.Message{{Conv: "", Seq: 1}, {Conv: "c", Seq: 0}, {Conv: long, Seq: 1}} {
		if err := s.Append(context.Background(), []*protocol.Message{m}); err == nil {
			t.Errorf("Append(conv len %d, seq %d) succeeded", len(m.Conv), m.Seq)
		}
	}
}

// One directory, one open store: a second New fails with ErrLocked, from
// this process or another, until the holder closes it.
func TestDirectoryLocked(t *testing.T) {
	if dir := os.Getenv("LOCALSTORE_HOLD_DIR"); dir != "" {
		// The other process: hold the store until stdin closes.
		s, err := localstore.New(localstore.Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("holding")
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = s.Close()
		return
	}
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := localstore.New(localstore.Config{Dir: dir}); !errors.Is(err, localstore.ErrLocked) {
		t.Fatalf("second New in this process = %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestDirectoryLocked$")
	cmd.Env = append(os.Environ(), "LOCALSTORE_HOLD_DIR="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "holding\n" {
		t.Fatalf("holder said %q, %v", line, err)
	}
	if _, err := localstore.New(localstore.Config{Dir: dir}); !errors.Is(err, localstore.ErrLocked) {
		t.Fatalf("New while another process holds the directory = %v, want ErrLocked", err)
	}
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	open(t, dir) // free again
}
