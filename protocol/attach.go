package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// TypeUpload asks for a presigned PUT URL for one file: the reply,
// TypeUploadURL, names the attachment id a message body then references
// in its "attachments" array.
const (
	TypeUpload    = "upload"
	TypeUploadURL = "upload_url"
)

// AttachmentPrefix starts every attachment id.
const AttachmentPrefix = "att_"

// MaxAttachmentName bounds an upload's file name, in bytes.
const MaxAttachmentName = 255

// ValidAttachmentID reports whether s has the form of an attachment id:
// AttachmentPrefix and 1 to 60 of [a-z0-9].
func ValidAttachmentID(s string) bool {
	rest, ok := strings.CutPrefix(s, AttachmentPrefix)
	if !ok || len(rest) == 0 || len(rest) > 60 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// UploadURL answers upload: PUT the file's bytes to URL, with the
// Content-Type and Content-Length the request declared, before Expires.
// A URL without a scheme and host is relative to the server's own
// (http[s]://host of the WebSocket URL).
type UploadURL struct {
	Type        string `json:"type"`
	ID          string `json:"id,omitempty"`
	Attachment  string `json:"attachment"`
	URL         string `json:"url"`
	Method      string `json:"method"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Expires     string `json:"expires"`
}

// File is an attachment as a member of its conversation sees it: a
// presigned GET URL valid until Expires (minutes), and for an image a
// thumbnail's. Messages whose body references attachments carry them,
// live and in pages, and so does the ack of their send.
type File struct {
	ID          string `json:"id"`
	URL         string `json:"url"`
	ThumbURL    string `json:"thumb_url,omitempty"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Name        string `json:"name,omitempty"`
	Expires     string `json:"expires"`
}

// AppendFiles appends `,"files":[...]` for files to dst, as encoding/json
// without HTML escaping encodes the field.
func AppendFiles(dst []byte, files []File) []byte {
	dst = append(dst, `,"files":[`...)
	for i := range files {
		f := &files[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"id":`...)
		dst = appendJSONString(dst, f.ID)
		dst = append(dst, `,"url":`...)
		dst = appendJSONString(dst, f.URL)
		if f.ThumbURL != "" {
			dst = append(dst, `,"thumb_url":`...)
			dst = appendJSONString(dst, f.ThumbURL)
		}
		dst = append(dst, `,"content_type":`...)
		dst = appendJSONString(dst, f.ContentType)
		dst = append(dst, `,"size":`...)
		dst = strconv.AppendInt(dst, f.Size, 10)
		if f.Name != "" {
			dst = append(dst, `,"name":`...)
			dst = appendJSONString(dst, f.Name)
		}
		dst = append(dst, `,"expires":`...)
		dst = appendJSONString(dst, f.Expires)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// AttachmentIDs returns the ids of body's "attachments" array: nil when
// body has none, ok false when the field is there but not an array of
// strings. A body that cannot name one (no "att_" in it) is not parsed.
func AttachmentIDs(body []byte) (ids []string, ok bool) {
	if !bytes.Contains(body, []byte(`"attachments"`)) {
		return nil, true
	}
	var b struct {
		Attachments json.RawMessage `json:"attachments"`
	}
	if json.Unmarshal(body, &b) != nil || len(b.Attachments) == 0 {
		return nil, true
	}
	if err := json.Unmarshal(b.Attachments, &ids); err != nil {
		return nil, false
	}
	return ids, true
}
