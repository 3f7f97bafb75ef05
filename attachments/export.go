package attachments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/protocol"
)

// ExportContentType is the content type of a user's export archive
// (services/erase): NDJSON.
const ExportContentType = "application/x-ndjson"

// MaxExport bounds an export archive: the bound of one file.
func (s *Service) MaxExport() int64 { return s.cfg.MaxSize }

// PutExport stores uid's export archive as an upload of theirs that no
// message references, so it counts against their quota and the sweeper
// deletes it after Abandoned (24 hours by default), and returns it with a
// signed GET URL valid for GetExpiry. data is at most MaxExport bytes.
func (s *Service) PutExport(ctx context.Context, uid, name string, data []byte) (protocol.File, error) {
	size := int64(len(data))
	if size > s.cfg.MaxSize {
		return protocol.File{}, fmt.Errorf("%w: the archive is %d bytes, over the bound of %d", ErrTooLarge, size, s.cfg.MaxSize)
	}
	if err := s.addQuota(ctx, uid, size); err != nil {
		return protocol.File{}, err
	}
	id := newID()
	now := s.cfg.Now()
	rec := record{Owner: uid, ContentType: ExportContentType, Size: size, Name: name, Created: now.UTC()}
	b, _ := json.Marshal(rec)
	if _, err := s.kv.Create(ctx, recordKey(id), b); err != nil {
		_ = s.addQuota(context.WithoutCancel(ctx), uid, -size)
		return protocol.File{}, fmt.Errorf("record export: %w", err)
	}
	if err := s.store.Put(ctx, id, ExportContentType, data); err != nil {
		return protocol.File{}, fmt.Errorf("store export: %w", err)
	}
	url, err := s.store.PresignGet(ctx, id, s.cfg.GetExpiry)
	if err != nil {
		return protocol.File{}, fmt.Errorf("presign export: %w", err)
	}
	return protocol.File{ID: id, URL: url, ContentType: ExportContentType, Size: size, Name: name,
		Expires: protocol.FormatTime(now.Add(s.cfg.GetExpiry))}, nil
}

// DeleteOwned deletes every attachment uid owns that is still recorded:
// uploads no message references yet and export archives (the erasure of
// uid; those of their messages go with the messages). It reads every
// record, as the sweeper does, and reports how many it deleted.
func (s *Service) DeleteOwned(ctx context.Context, uid string) (int, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, "a.>")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	_ = lister.Stop()
	n := 0
	for _, k := range keys {
		deleted := false
		if err := s.remove(ctx, idOfKey(k), func(r record) bool {
			deleted = r.Owner == uid
			return deleted
		}); err != nil {
			return n, err
		}
		if deleted {
			n++
		}
	}
	return n, nil
}
