// Package attachments keeps the files messages carry. A Store holds the
// bytes (fsstore under --data, served by natter itself; s3store in any
// S3-compatible object storage) and hands out presigned URLs, so the bytes
// never travel over the WebSocket; a Service keeps each attachment's
// record and its owner's quota in the ATTACHMENTS KV bucket, checks the
// attachments a message references when it is sent, signs short-lived
// GET URLs for the members who receive it, makes thumbnails of images,
// and deletes what deleted messages and abandoned uploads leave.
package attachments

import (
	"context"
	"io"
	"time"
)

// Object is what a Store knows of a stored object.
type Object struct {
	Size        int64
	ContentType string
}

// Store is object storage with presigned URLs: whoever holds a URL may do
// what it was signed for until it expires, and nothing else. Keys are
// attachment ids and their thumbnails' ("<id>.thumb"). A missing object is
// ErrNotFound.
type Store interface {
	// PresignPut returns a URL that accepts one PUT of exactly size bytes
	// of contentType at key until now+expiry.
	PresignPut(ctx context.Context, key, contentType string, size int64, expiry time.Duration) (string, error)
	// PresignGet returns a URL that serves key until now+expiry.
	PresignGet(ctx context.Context, key string, expiry time.Duration) (string, error)
	// Stat returns key's size and content type.
	Stat(ctx context.Context, key string) (Object, error)
	// Put stores data at key (the server's own objects: thumbnails).
	Put(ctx context.Context, key, contentType string, data []byte) error
	// Open reads key.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// ThumbKey is the key of id's thumbnail.
func ThumbKey(id string) string { return id + ".thumb" }
