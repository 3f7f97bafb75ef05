// Package s3store is the attachments.Store over S3-compatible object
// storage (AWS S3, MinIO, Ceph RGW, S3Proxy, ...) through minio-go:
// presigned URLs are SigV4 query-signed by the storage's own rules, the
// PUT's with its Content-Type signed in, so a PUT of another type fails
// the signature; the size is checked by the Service's Stat at send.
package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/natter-chat/natter/attachments"
)

var _ attachments.Store = (*Store)(nil)

// Config locates a bucket.
type Config struct {
	// Endpoint is host:port of the S3 API, as clients reach it: presigned
	// URLs name it.
	Endpoint string
	// Secure uses https.
	Secure bool
	// Region of the bucket; "us-east-1" when empty.
	Region string
	// Bucket holds the objects; created by New when missing.
	Bucket string
	// Prefix is put before every key ("natter/"), to share a bucket.
	Prefix string
	// AccessKey and SecretKey are the credentials (static).
	AccessKey, SecretKey string
	// Transport, optional, is the HTTP transport of the store's own
	// requests (stat, put, delete).
	Transport http.RoundTripper
}

// Store is a bucket of attachments.
type Store struct {
	c      *minio.Client
	bucket string
	prefix string
}

// New connects to the endpoint and makes sure the bucket exists.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3store: endpoint and bucket are required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    cfg.Secure,
		Region:    cfg.Region,
		Transport: cfg.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3store: bucket %s: %w", cfg.Bucket, err)
	}
	if !ok {
		if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			if code := minio.ToErrorResponse(err).Code; code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
				return nil, fmt.Errorf("s3store: create bucket %s: %w", cfg.Bucket, err)
			}
		}
	}
	return &Store{c: c, bucket: cfg.Bucket, prefix: cfg.Prefix}, nil
}

func (s *Store) key(k string) string { return s.prefix + k }

func notFound(err error) error {
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey, "NotFound":
		return fmt.Errorf("%w: %w", attachments.ErrNotFound, err)
	}
	return err
}

// PresignPut implements attachments.Store.
func (s *Store) PresignPut(ctx context.Context, key, contentType string, _ int64, expiry time.Duration) (string, error) {
	h := http.Header{"Content-Type": {contentType}}
	u, err := s.c.PresignHeader(ctx, http.MethodPut, s.bucket, s.key(key), expiry, nil, h)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// Origin is the scheme://host[:port] the presigned URLs point at (the
// bucket's host when the endpoint takes virtual-host-style requests): the
// origin a browser app must be allowed to PUT to and load images from.
func (s *Store) Origin(ctx context.Context) (string, error) {
	u, err := s.c.PresignedGetObject(ctx, s.bucket, s.key("origin"), time.Minute, nil)
	if err != nil {
		return "", fmt.Errorf("s3store: origin: %w", err)
	}
	return u.Scheme + "://" + u.Host, nil
}

// PresignGet implements attachments.Store.
func (s *Store) PresignGet(ctx context.Context, key string, expiry time.Duration) (string, error) {
	u, err := s.c.PresignedGetObject(ctx, s.bucket, s.key(key), expiry, nil)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// Stat implements attachments.Store.
func (s *Store) Stat(ctx context.Context, key string) (attachments.Object, error) {
	info, err := s.c.StatObject(ctx, s.bucket, s.key(key), minio.StatObjectOptions{})
	if err != nil {
		return attachments.Object{}, notFound(err)
	}
	return attachments.Object{Size: info.Size, ContentType: info.ContentType}, nil
}

// Put implements attachments.Store.
func (s *Store) Put(ctx context.Context, key, contentType string, data []byte) error {
	_, err := s.c.PutObject(ctx, s.bucket, s.key(key), bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: contentType})
	return err
}

// Open implements attachments.Store.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if _, err := s.Stat(ctx, key); err != nil {
		return nil, err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.key(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, notFound(err)
	}
	return obj, nil
}

// Delete implements attachments.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	err := s.c.RemoveObject(ctx, s.bucket, s.key(key), minio.RemoveObjectOptions{})
	if err != nil && errors.Is(notFound(err), attachments.ErrNotFound) {
		return nil
	}
	return err
}
