package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/attachments"
	"github.com/natter-chat/natter/attachments/fsstore"
	"github.com/natter-chat/natter/gateway"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// AttachmentsConfig chooses where attachments are stored: the embedded
// filesystem store under Dir, served by natter at /v1/files/, or S3;
// neither turns attachments off (upload is refused).
type AttachmentsConfig struct {
	// Dir is the filesystem store's directory (natter serve: <data>/attachments).
	Dir string
	// PublicURL starts the filesystem store's URLs (scheme://host of this
	// server as clients reach it); empty: URLs are relative.
	PublicURL string
	// Store is a store the caller opened (tests, S3); it wins over Dir.
	Store attachments.Store
	// Service bounds uploads: sizes, types, quota, expiries, the sweeper.
	Service attachments.Config
}

func (c AttachmentsConfig) enabled() bool { return c.Store != nil || c.Dir != "" }

var _ gateway.Attachments = gatewayAttachments{}

// openAttachments opens the configured store and the service over the
// ATTACHMENTS bucket, and serves the filesystem store's URLs on mux. It
// returns nil, nil when attachments are off.
func (a *App) openAttachments(ctx context.Context, js jetstream.JetStream, mux *http.ServeMux) (*attachments.Service, error) {
	cfg := a.cfg.Attachments
	if !cfg.enabled() {
		return nil, nil
	}
	store := cfg.Store
	if store == nil {
		fs, err := fsstore.New(fsstore.Config{Dir: cfg.Dir, BaseURL: cfg.PublicURL, Now: cfg.Service.Now})
		if err != nil {
			return nil, err
		}
		mux.Handle("GET "+fsstore.Prefix, fs)
		mux.Handle("PUT "+fsstore.Prefix, fs)
		store = fs
	}
	kv, err := js.KeyValue(ctx, schema.BucketAttachments)
	if err != nil {
		return nil, err
	}
	svcCfg := cfg.Service
	if svcCfg.Logger == nil {
		svcCfg.Logger = a.log
	}
	return attachments.New(svcCfg, store, kv), nil
}

// gatewayAttachments is the attachments service as the gateway's
// Attachments.
type gatewayAttachments struct{ s *attachments.Service }

// attachmentsError translates the service's sentinels into the gateway's.
// The client is told the error's text after the sentinel's.
func attachmentsError(err error) error {
	for _, t := range []struct{ from, to error }{
		{attachments.ErrBadRequest, gateway.ErrBadRequest},
		{attachments.ErrTooLarge, gateway.ErrTooLarge},
		{attachments.ErrQuota, gateway.ErrTooLarge},
		{attachments.ErrForbidden, gateway.ErrRefused},
	} {
		if err != nil && errors.Is(err, t.from) {
			text := strings.TrimPrefix(err.Error(), t.from.Error()+": ")
			return &translated{kind: t.to, err: fmt.Errorf("%s%w", text, noText{err})}
		}
	}
	return err
}

// noText wraps an error for errors.Is without adding to the message.
type noText struct{ err error }

func (e noText) Error() string { return "" }
func (e noText) Unwrap() error { return e.err }

func (g gatewayAttachments) Upload(ctx context.Context, uid, contentType string, size int64, name string) (gateway.Upload, error) {
	up, err := g.s.NewUpload(ctx, uid, contentType, size, name)
	return gateway.Upload{ID: up.ID, URL: up.URL, Expires: up.Expires}, attachmentsError(err)
}

func (g gatewayAttachments) Attach(ctx context.Context, uid, conv string, ids []string, expiresAt string) ([]protocol.File, error) {
	files, err := g.s.Attach(ctx, uid, conv, ids, expiresAt)
	return files, attachmentsError(err)
}

func (g gatewayAttachments) Files(ctx context.Context, conv string, ids []string) ([]protocol.File, error) {
	return g.s.Files(ctx, conv, ids)
}

func (g gatewayAttachments) Delete(ctx context.Context, conv string, ids []string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return g.s.Delete(ctx, conv, ids)
}

// originer is an attachments store whose presigned URLs point at another
// origin (s3store): the web app's policy must allow it.
type originer interface {
	Origin(ctx context.Context) (string, error)
}

// mediaOrigins are the origins the bundled web app must be allowed to
// load attachments from and PUT uploads to, besides its own: the S3
// bucket's, and the filesystem store's PublicURL when set.
func (a *App) mediaOrigins(ctx context.Context) ([]string, error) {
	cfg := a.cfg.Attachments
	var origins []string
	if o, ok := cfg.Store.(originer); ok {
		origin, err := o.Origin(ctx)
		if err != nil {
			return nil, err
		}
		origins = append(origins, origin)
	} else if cfg.Store == nil && cfg.Dir != "" && cfg.PublicURL != "" {
		origins = append(origins, cfg.PublicURL)
	}
	return origins, nil
}
