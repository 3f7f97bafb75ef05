package attachments

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// DefaultContentTypes are the content types an upload may declare unless
// Config.ContentTypes says otherwise. None of them is rendered as a page
// by a browser (no text/html, no image/svg+xml): fsstore serves files
// from natter's own origin.
var DefaultContentTypes = []string{
	"image/jpeg", "image/png", "image/gif", "image/webp",
	"video/mp4", "video/webm", "audio/mpeg", "audio/ogg", "audio/mp4", "audio/webm",
	"application/pdf", "application/zip", "application/octet-stream", "text/plain",
}

// Config tunes a Service. The zero value is filled with the defaults.
type Config struct {
	// MaxSize bounds one file; default 25 MiB.
	MaxSize int64
	// ContentTypes an upload may declare; DefaultContentTypes when nil.
	ContentTypes []string
	// Quota bounds the bytes one user's attachments take, uploads not yet
	// referenced included; default 1 GiB.
	Quota int64
	// MaxPerMessage bounds the attachments one message references;
	// default 10.
	MaxPerMessage int
	// PutExpiry is how long an upload URL is valid; default 15 minutes.
	PutExpiry time.Duration
	// GetExpiry is how long the GET URLs members receive are valid;
	// default 10 minutes. Pages and pushes sign fresh ones each time.
	GetExpiry time.Duration
	// Abandoned is how long an upload may stay unreferenced by any
	// message before the sweeper deletes it; default 24 hours.
	Abandoned time.Duration
	// SweepEvery is how often Run sweeps; default Abandoned/24.
	SweepEvery time.Duration
	// ThumbSize is the longer side of thumbnails, in pixels; default 320.
	ThumbSize int
	// MaxThumbSource bounds the images thumbnails are made of, in bytes;
	// default 20 MiB. Larger images get none.
	MaxThumbSource int64
	// Logger; slog.Default by default.
	Logger *slog.Logger
	// Now is the clock.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.MaxSize <= 0 {
		c.MaxSize = 25 << 20
	}
	if c.ContentTypes == nil {
		c.ContentTypes = DefaultContentTypes
	}
	if c.Quota <= 0 {
		c.Quota = 1 << 30
	}
	if c.MaxPerMessage <= 0 {
		c.MaxPerMessage = 10
	}
	if c.PutExpiry <= 0 {
		c.PutExpiry = 15 * time.Minute
	}
	if c.GetExpiry <= 0 {
		c.GetExpiry = 10 * time.Minute
	}
	if c.Abandoned <= 0 {
		c.Abandoned = 24 * time.Hour
	}
	if c.SweepEvery <= 0 {
		c.SweepEvery = c.Abandoned / 24
	}
	if c.ThumbSize <= 0 {
		c.ThumbSize = 320
	}
	if c.MaxThumbSource <= 0 {
		c.MaxThumbSource = 20 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// record is an attachment's value in the bucket (key a.<id>).
type record struct {
	Owner       string    `json:"owner"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	Name        string    `json:"name,omitempty"`
	Created     time.Time `json:"created"`
	// Conv is the conversation of the first message that referenced it;
	// empty while it is an upload no message references yet.
	Conv  string `json:"conv,omitempty"`
	Thumb bool   `json:"thumb,omitempty"`
	// ExpiresAt is the expires_at of the disappearing message that
	// referenced it (expiry.go): it goes with the message.
	ExpiresAt string `json:"expires_at,omitempty"`
}

func recordKey(id string) string { return "a." + id }
func quotaKey(uid string) string { return "q." + uid }
func idOfKey(key string) string  { return strings.TrimPrefix(key, "a.") }
func newID() string              { return protocol.AttachmentPrefix + randomToken() }
func isImage(contentType string) bool {
	return contentType == "image/jpeg" || contentType == "image/png"
}

func randomToken() string {
	var b [20]byte // 160 bits: an id is not guessable
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Service keeps attachments' records and quotas in the ATTACHMENTS bucket
// and their bytes in a Store.
type Service struct {
	cfg   Config
	store Store
	kv    jetstream.KeyValue

	mu    sync.Mutex
	cache map[string]cached // records of referenced attachments, for pushes
}

type cached struct {
	rec  record
	when time.Time
}

// cacheFor is how long a referenced attachment's record is reused: only
// deletion changes it, and a deleted message's pushes are over.
const cacheFor = time.Minute

// New returns a Service over store and the ATTACHMENTS bucket.
func New(cfg Config, store Store, kv jetstream.KeyValue) *Service {
	return &Service{cfg: cfg.withDefaults(), store: store, kv: kv, cache: make(map[string]cached)}
}

// Upload is the answer to an upload request.
type Upload struct {
	ID      string
	URL     string
	Expires time.Time
}

// NewUpload checks an upload of uid against the bounds, reserves its size
// in uid's quota and returns the attachment id with a presigned PUT URL.
func (s *Service) NewUpload(ctx context.Context, uid, contentType string, size int64, name string) (Upload, error) {
	ct, err := s.checkContentType(contentType)
	if err != nil {
		return Upload{}, err
	}
	if size <= 0 {
		return Upload{}, fmt.Errorf("%w: size must be a positive number of bytes", ErrBadRequest)
	}
	if size > s.cfg.MaxSize {
		return Upload{}, fmt.Errorf("%w: size %d is over the bound of %d bytes", ErrTooLarge, size, s.cfg.MaxSize)
	}
	if len(name) > protocol.MaxAttachmentName || !utf8.ValidString(name) || strings.ContainsFunc(name, isControl) {
		return Upload{}, fmt.Errorf("%w: name must be at most %d bytes of printable UTF-8", ErrBadRequest, protocol.MaxAttachmentName)
	}
	if err := s.addQuota(ctx, uid, size); err != nil {
		return Upload{}, err
	}
	id := newID()
	now := s.cfg.Now()
	rec := record{Owner: uid, ContentType: ct, Size: size, Name: name, Created: now.UTC()}
	data, _ := json.Marshal(rec)
	if _, err := s.kv.Create(ctx, recordKey(id), data); err != nil {
		_ = s.addQuota(context.WithoutCancel(ctx), uid, -size)
		return Upload{}, fmt.Errorf("record attachment: %w", err)
	}
	url, err := s.store.PresignPut(ctx, id, ct, size, s.cfg.PutExpiry)
	if err != nil {
		return Upload{}, fmt.Errorf("presign upload: %w", err)
	}
	return Upload{ID: id, URL: url, Expires: now.Add(s.cfg.PutExpiry)}, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkContentType returns contentType without parameters, lower case,
// if uploads may declare it.
func (s *Service) checkContentType(contentType string) (string, error) {
	ct, _, err := mime.ParseMediaType(contentType)
	if err != nil || !slices.Contains(s.cfg.ContentTypes, ct) {
		return "", fmt.Errorf("%w: content_type must be one of %s", ErrBadRequest, strings.Join(s.cfg.ContentTypes, ", "))
	}
	return ct, nil
}

// Attach checks the attachments a message of uid in conv references: each
// is an upload of uid, stored with the size and content type declared, and
// not referenced in another conversation. The first reference binds it to
// conv (the sweeper no longer touches it) and makes an image's thumbnail.
// It returns the files with GET URLs for the sender.
//
// expiresAt is the message's expires_at ("" when it does not disappear):
// an attachment first bound by a disappearing message disappears with it.
func (s *Service) Attach(ctx context.Context, uid, conv string, ids []string, expiresAt string) ([]protocol.File, error) {
	if len(ids) > s.cfg.MaxPerMessage {
		return nil, fmt.Errorf("%w: a message references at most %d attachments", ErrBadRequest, s.cfg.MaxPerMessage)
	}
	for i, id := range ids {
		if !protocol.ValidAttachmentID(id) {
			return nil, fmt.Errorf("%w: attachments must be attachment ids (att_...)", ErrBadRequest)
		}
		if slices.Contains(ids[:i], id) {
			return nil, fmt.Errorf("%w: attachment %s is referenced twice", ErrBadRequest, id)
		}
	}
	recs := make([]record, len(ids))
	for i, id := range ids {
		rec, err := s.bind(ctx, uid, conv, id, expiresAt)
		if err != nil {
			return nil, err
		}
		recs[i] = rec
	}
	return s.files(ctx, ids, recs)
}

// bind checks one attachment and binds it to conv.
func (s *Service) bind(ctx context.Context, uid, conv, id, expiresAt string) (record, error) {
	notYours := fmt.Errorf("%w: attachment %s is not an upload of yours", ErrForbidden, id)
	for {
		e, err := s.kv.Get(ctx, recordKey(id))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return record{}, notYours
		}
		if err != nil {
			return record{}, err
		}
		var rec record
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return record{}, fmt.Errorf("attachment %s: %w", id, err)
		}
		if rec.Owner != uid {
			return record{}, notYours
		}
		if rec.Conv == conv && rec.ExpiresAt == expiresAt {
			return rec, nil // a retry, or an edit keeping it
		}
		if rec.Conv == conv {
			// Referenced again with another expiry (expiry.go): it lives
			// as the latest message referencing it does.
			rec.ExpiresAt = expiresAt
			data, _ := json.Marshal(rec)
			if _, err := s.kv.Update(ctx, recordKey(id), data, e.Revision()); err != nil {
				if isConflict(err) {
					continue
				}
				return record{}, fmt.Errorf("bind attachment %s: %w", id, err)
			}
			return rec, nil
		}
		if rec.Conv != "" {
			return record{}, fmt.Errorf("%w: attachment %s belongs to a message of another conversation", ErrForbidden, id)
		}
		obj, err := s.store.Stat(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return record{}, fmt.Errorf("%w: attachment %s has not been uploaded (PUT its url first)", ErrBadRequest, id)
		}
		if err != nil {
			return record{}, fmt.Errorf("stat attachment %s: %w", id, err)
		}
		if obj.Size != rec.Size {
			return record{}, fmt.Errorf("%w: attachment %s has %d bytes, not the %d its upload declared", ErrBadRequest, id, obj.Size, rec.Size)
		}
		if ct, _, _ := mime.ParseMediaType(obj.ContentType); ct != rec.ContentType {
			return record{}, fmt.Errorf("%w: attachment %s was stored as %q, not the %s its upload declared", ErrBadRequest, id, obj.ContentType, rec.ContentType)
		}
		rec.Conv, rec.ExpiresAt = conv, expiresAt
		if isImage(rec.ContentType) && rec.Size <= s.cfg.MaxThumbSource && !rec.Thumb {
			rec.Thumb = s.makeThumb(ctx, id, rec.ContentType)
		}
		data, _ := json.Marshal(rec)
		if _, err := s.kv.Update(ctx, recordKey(id), data, e.Revision()); err != nil {
			if isConflict(err) {
				continue
			}
			return record{}, fmt.Errorf("bind attachment %s: %w", id, err)
		}
		return rec, nil
	}
}

// Files returns the files of a message's attachments with fresh GET URLs,
// for a member of its conversation; attachments deleted since are left
// out. The caller has checked that the reader is a member of the
// conversation the message is in: ids bound to another conversation are
// left out too, so a body cannot name someone else's files.
func (s *Service) Files(ctx context.Context, conv string, ids []string) ([]protocol.File, error) {
	if len(ids) > s.cfg.MaxPerMessage {
		ids = ids[:s.cfg.MaxPerMessage]
	}
	keep := make([]string, 0, len(ids))
	recs := make([]record, 0, len(ids))
	for _, id := range ids {
		if !protocol.ValidAttachmentID(id) {
			continue
		}
		rec, ok, err := s.record(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok && rec.Conv == conv && !s.expired(rec) {
			keep = append(keep, id)
			recs = append(recs, rec)
		}
	}
	return s.files(ctx, keep, recs)
}

func (s *Service) files(ctx context.Context, ids []string, recs []record) ([]protocol.File, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out := make([]protocol.File, len(ids))
	for i, id := range ids {
		valid, until := s.getExpiry(recs[i])
		expires := protocol.FormatTime(until)
		url, err := s.store.PresignGet(ctx, id, valid)
		if err != nil {
			return nil, fmt.Errorf("presign %s: %w", id, err)
		}
		f := protocol.File{ID: id, URL: url, ContentType: recs[i].ContentType, Size: recs[i].Size, Name: recs[i].Name, Expires: expires}
		if recs[i].Thumb {
			if f.ThumbURL, err = s.store.PresignGet(ctx, ThumbKey(id), valid); err != nil {
				return nil, fmt.Errorf("presign %s: %w", ThumbKey(id), err)
			}
		}
		out[i] = f
	}
	return out, nil
}

// record reads id's record, from the cache when it is bound and fresh.
func (s *Service) record(ctx context.Context, id string) (record, bool, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	c, ok := s.cache[id]
	s.mu.Unlock()
	if ok && now.Sub(c.when) < cacheFor {
		return c.rec, true, nil
	}
	e, err := s.kv.Get(ctx, recordKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, err
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return record{}, false, fmt.Errorf("attachment %s: %w", id, err)
	}
	if rec.Conv != "" {
		s.mu.Lock()
		if len(s.cache) > 10_000 {
			clear(s.cache)
		}
		s.cache[id] = cached{rec: rec, when: now}
		s.mu.Unlock()
	}
	return rec, true, nil
}

// Delete deletes the attachments of a deleted message of conv: their
// objects, thumbnails and records, and gives their bytes back to their
// owners' quotas. Ids not bound to conv are left alone.
func (s *Service) Delete(ctx context.Context, conv string, ids []string) error {
	var errs []error
	for _, id := range ids {
		if !protocol.ValidAttachmentID(id) {
			continue
		}
		errs = append(errs, s.remove(ctx, id, func(r record) bool { return r.Conv == conv }))
	}
	return errors.Join(errs...)
}

// remove deletes id when its record passes cond.
func (s *Service) remove(ctx context.Context, id string, cond func(record) bool) error {
	e, err := s.kv.Get(ctx, recordKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return fmt.Errorf("attachment %s: %w", id, err)
	}
	if !cond(rec) {
		return nil
	}
	if err := errors.Join(s.store.Delete(ctx, id), s.store.Delete(ctx, ThumbKey(id))); err != nil {
		return fmt.Errorf("delete attachment %s: %w", id, err)
	}
	// The record goes last, with the revision read: of two deleters one
	// gives the bytes back.
	if err := s.kv.Delete(ctx, recordKey(id), jetstream.LastRevision(e.Revision())); err != nil {
		if isConflict(err) {
			return nil
		}
		return fmt.Errorf("delete attachment %s: %w", id, err)
	}
	s.mu.Lock()
	delete(s.cache, id)
	s.mu.Unlock()
	return s.addQuota(ctx, rec.Owner, -rec.Size)
}

// Used returns the bytes uid's attachments take.
func (s *Service) Used(ctx context.Context, uid string) (int64, error) {
	n, _, err := s.quota(ctx, uid)
	return n, err
}

func (s *Service) quota(ctx context.Context, uid string) (int64, uint64, error) {
	e, err := s.kv.Get(ctx, quotaKey(uid))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	n, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("quota of %s: %w", uid, err)
	}
	return n, e.Revision(), nil
}

// addQuota adds delta to uid's used bytes; a positive delta that would
// pass the quota is ErrQuota.
func (s *Service) addQuota(ctx context.Context, uid string, delta int64) error {
	for {
		used, rev, err := s.quota(ctx, uid)
		if err != nil {
			return err
		}
		n := max(used+delta, 0)
		if delta > 0 && n > s.cfg.Quota {
			return fmt.Errorf("%w: %d of %d bytes used, %d more asked", ErrQuota, used, s.cfg.Quota, delta)
		}
		val := []byte(strconv.FormatInt(n, 10))
		if rev == 0 {
			_, err = s.kv.Create(ctx, quotaKey(uid), val)
		} else {
			_, err = s.kv.Update(ctx, quotaKey(uid), val, rev)
		}
		if err == nil {
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("quota of %s: %w", uid, err)
		}
	}
}

// isConflict reports whether a KV write lost a race with another.
func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || schema.IsWrongLastSeq(err)
}

// Sweep deletes the uploads no message referenced within Abandoned and
// the attachments of disappearing messages that expired (expiry.go), and
// reports how many it deleted.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, "a.>")
	if err != nil {
		return 0, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	_ = lister.Stop()
	cutoff := s.cfg.Now().Add(-s.cfg.Abandoned)
	n := 0
	for _, k := range keys {
		deleted := false
		err := s.remove(ctx, idOfKey(k), func(r record) bool {
			deleted = (r.Conv == "" && r.Created.Before(cutoff)) || s.expired(r)
			return deleted
		})
		if err != nil {
			return n, err
		}
		if deleted {
			n++
		}
	}
	return n, nil
}

// Run sweeps every SweepEvery until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := s.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("attachment sweep failed", "err", err)
		}
		if n > 0 {
			s.cfg.Logger.Info("deleted abandoned uploads", "count", n)
		}
	}
}
