package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// Attachments keeps the files messages reference (package attachments,
// adapted by app). Errors a client caused match ErrBadRequest,
// ErrTooLarge or ErrRefused, with the text the client sees.
type Attachments interface {
	// Upload checks an upload of uid against the bounds and the quota and
	// returns its attachment id and presigned PUT URL.
	Upload(ctx context.Context, uid, contentType string, size int64, name string) (Upload, error)
	// Attach checks that each id is an upload of uid, stored as declared
	// and not referenced in another conversation, binds them to conv and
	// returns their files for the sender.
	// expiresAt is the message's (ttl.go): they disappear with it.
	Attach(ctx context.Context, uid, conv string, ids []string, expiresAt string) ([]protocol.File, error)
	// Files returns fresh GET URLs of ids bound to conv, for a member of
	// conv; others are left out.
	Files(ctx context.Context, conv string, ids []string) ([]protocol.File, error)
	// Delete deletes the attachments ids of a deleted message of conv.
	Delete(ctx context.Context, conv string, ids []string) error
}

// Upload is an accepted upload.
type Upload struct {
	ID      string
	URL     string
	Expires time.Time
}

// upload answers an upload request with a presigned PUT URL.
func (sess *session) upload(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if sess.srv.attach == nil {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "this server stores no attachments")
	}
	up, err := sess.srv.attach.Upload(ctx, sess.user, req.ContentType, req.Size, req.Name)
	if err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.UploadURL{
		Type: protocol.TypeUploadURL, ID: req.ID, Attachment: up.ID, URL: up.URL, Method: "PUT",
		ContentType: req.ContentType, Size: req.Size, Expires: protocol.FormatTime(up.Expires),
	}, nil
}

// attachmentsOf checks the attachments a send's body references, before
// it is stored: only a message or an edit references any.
func (sess *session) attachmentsOf(ctx context.Context, req *protocol.Request, kind, expiresAt string) ([]protocol.File, *protocol.Error) {
	if !bytes.Contains(req.Body, attachmentsKey) {
		// What AttachmentIDs answers, without its allocation per send.
		return nil, nil
	}
	ids, ok := protocol.AttachmentIDs(req.Body)
	if !ok {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "body.attachments must be an array of attachment ids")
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if kind != protocol.KindMessage && kind != protocol.KindEdit {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "only a message or an edit references attachments")
	}
	if sess.srv.attach == nil {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "this server stores no attachments")
	}
	files, err := sess.srv.attach.Attach(ctx, sess.user, req.Conv, ids, expiresAt)
	if err != nil {
		return nil, sess.fail(err)
	}
	return files, nil
}

// deleteAttachments deletes the attachments of a message just deleted.
func (sess *session) deleteAttachments(ctx context.Context, conv string, target *protocol.Message) {
	if sess.srv.attach == nil || target == nil {
		return
	}
	ids, _ := protocol.AttachmentIDs(target.Body)
	if len(ids) == 0 {
		return
	}
	if err := sess.srv.attach.Delete(ctx, conv, ids); err != nil {
		sess.srv.cfg.Logger.Warn("deleting a deleted message's attachments failed; the sweeper does not retry them",
			"conv", conv, "seq", target.Seq, "err", err)
	}
}

// withFiles adds the files of a message's attachments to m, for a member
// reading a page.
func (s *Server) withFiles(ctx context.Context, m *protocol.Message) {
	if s.attach == nil || m.Deleted || !bytes.Contains(m.Body, attachmentMark) {
		return
	}
	ids, _ := protocol.AttachmentIDs(m.Body)
	if len(ids) == 0 {
		return
	}
	files, err := s.attach.Files(ctx, m.Conv, ids)
	if err != nil {
		s.cfg.Logger.Warn("signing attachment URLs failed", "conv", m.Conv, "seq", m.Seq, "err", err)
		return
	}
	m.Files = files
}

// attachmentsKey is in every body with attachments (protocol.AttachmentIDs).
var attachmentsKey = []byte(`"attachments"`)

// attachmentMark is in every body that references an attachment.
var attachmentMark = []byte(`"` + protocol.AttachmentPrefix)

// pushWithFiles returns a pushed message frame with its attachments'
// files added, or frame unchanged when it has none. Pushes reach only
// members (the fan-out expands members; hub.hides drops what a user no
// longer sees), so a push may carry URLs.
func (s *Server) pushWithFiles(frame []byte) []byte {
	if s.attach == nil || !bytes.Contains(frame, attachmentMark) {
		return frame
	}
	var m struct {
		Type, Conv, Kind string
		Seq              uint64
		Body             json.RawMessage
	}
	if err := json.Unmarshal(frame, &m); err != nil || m.Type != protocol.TypeMessage || m.Kind != protocol.KindMessage && m.Kind != protocol.KindEdit {
		return frame
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	ids, _ := protocol.AttachmentIDs(m.Body)
	if len(ids) == 0 {
		return frame
	}
	files, err := s.attach.Files(ctx, m.Conv, ids)
	if err != nil {
		s.cfg.Logger.Warn("signing attachment URLs failed", "conv", m.Conv, "seq", m.Seq, "err", err)
		return frame
	}
	if len(files) == 0 {
		return frame
	}
	end := bytes.LastIndexByte(frame, '}')
	if end < 0 {
		return frame
	}
	out := make([]byte, 0, len(frame)+256*len(files))
	out = append(out, frame[:end]...)
	out = protocol.AppendFiles(out, files)
	return append(out, frame[end:]...)
}
