package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/services/erase"
)

const userUsage = `usage: natter user [flags] COMMAND
  erase UID    erase the user (GDPR): remove them from every conversation, delete their
               devices, presence, markers, inbox records, block list and attachments, and
               make every message they sent a tombstone in the history store, the search
               index and the CHAT stream. The user can no longer log in. Idempotent: run it
               again to finish an erasure that stopped half-way; prints what it did.
  export UID   write the user's archive as NDJSON to --out (default stdout): their conversations
               (metadata, members), their own messages, their attachments' ids; paged, any size
flags (before or after the command):
`

// userCmd is `natter user`: the operator's erasure (and export) of a
// user, asked of the erase service (services/erase) that runs next to
// the history store, as the operator's NATS user.
func userCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter user", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, userUsage)
		fs.PrintDefaults()
	}
	natsURL := fs.String("nats-url", os.Getenv("NATTER_NATS_URL"), "the operator's NATS URL; empty: read <data>/"+natsrv.OperatorURLFile)
	natsCA := fs.String("nats-ca", "", "PEM CA file to trust for a tls:// --nats-url")
	dataDir := fs.String("data", "./data", "data directory of natter serve or natter nats, holding "+natsrv.OperatorURLFile)
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	out := fs.String("out", "", "export: the file to write (default stdout)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up waiting after this long (the erasure goes on where it is; run again to finish it)")
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		words = append(words, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(words) != 2 || words[0] != "erase" && words[0] != "export" {
		fs.Usage()
		return errors.New("user: want erase UID or export UID")
	}
	uid := words[1]
	if !protocol.ValidID(uid) {
		return fmt.Errorf("user: %q is not a valid user id", uid)
	}
	url := *natsURL
	if url == "" {
		b, err := os.ReadFile(filepath.Join(*dataDir, natsrv.OperatorURLFile))
		if err != nil {
			return fmt.Errorf("no --nats-url, and the operator's URL file cannot be read (is --data the data directory of natter serve or natter nats?): %w", err)
		}
		url = strings.TrimSpace(string(b))
	}
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	opts := []nats.Option{nats.Name("natter-user"), nats.Timeout(10 * time.Second)}
	if *natsCA != "" {
		opts = append(opts, nats.RootCAs(*natsCA))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS as the operator: %w", err)
	}
	defer nc.Close()
	if words[0] == "export" {
		return exportUser(ctx, nc, uid, *out, stdout, stderr)
	}
	rep, err := erase.Request(ctx, nc, schema.EraseEndpointRun, uid)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return writeEraseReport(stdout, rep)
}

func writeEraseReport(w io.Writer, r *erase.Report) error {
	_, err := fmt.Fprintf(w, `user %s erased (%s, %d run(s), started %s, finished %s)
conversations      %d (left %d groups, kept %d direct)
messages           %d rows made tombstones in the store, %d deletions published, %d deleted from CHAT
quotes             %d snippets removed from others' replies
attachments        %d deleted%s
keys               %d deleted, %d device/mute keys purged
`, r.User, r.State, r.Runs, r.Started, r.Finished, len(r.Convs), r.Left, r.DirectKept,
		r.Messages, r.Deletions, r.StreamDeleted, r.Quotes, r.Attachments, skipped(r.AttachmentsSkipped), r.Keys, r.PushKeys)
	if err == nil && r.StreamDenied > 0 {
		_, err = fmt.Fprintf(w, "CHAT denies deletes (made before erasure): %d copies leave it with the retention trimmer\n", r.StreamDenied)
	}
	return err
}

func skipped(b bool) string {
	if b {
		return " (some skipped: the erase service has no attachment store)"
	}
	return ""
}

// exportUser writes uid's archive (services/erase.Exporter) as the
// operator: conversations from the CONVERSATIONS bucket, messages through
// the history API a page at a time, attachments by id (the operator reads
// them in the attachment store).
func exportUser(ctx context.Context, nc *nats.Conn, uid, out string, stdout, stderr io.Writer) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	convs, err := conversation.New(ctx, conversation.Config{}, js)
	if err != nil {
		return err
	}
	x := &erase.Exporter{Convs: convs, Pages: history.NewRemote(nc, 30*time.Second), Now: func() string { return protocol.FormatTime(time.Now()) }}
	w := stdout
	if out != "" {
		f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	n, err := x.Export(ctx, w, uid)
	if err != nil {
		return err
	}
	if out != "" {
		if err := w.(*os.File).Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "exported %s: %d conversations, %d messages, %d attachments\n", uid, n.Conversations, n.Messages, n.Files)
	return nil
}
