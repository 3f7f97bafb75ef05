// Package fsstore is the embedded attachments.Store: files in a directory
// under --data, served by natter itself at Prefix with URLs signed like
// S3's presigned ones (HMAC-SHA256 of the method, key, expiry and, for a
// PUT, the content type and size, with a secret kept next to the files).
package fsstore

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/natter-chat/natter/attachments"
)

// Prefix is the path the Store's handler serves.
const Prefix = "/v1/files/"

// secretFile holds the signing key under Dir, made on first use.
const secretFile = "signing.key"

var _ attachments.Store = (*Store)(nil)

// Config locates a Store.
type Config struct {
	// Dir holds the files and the signing key.
	Dir string
	// BaseURL is what URLs start with (scheme://host, no path), for a
	// server behind a proxy that rewrites hosts; empty: URLs are relative
	// to the server's own (/v1/files/...), which clients resolve against
	// the URL they connected to.
	BaseURL string
	// Now is the clock.
	Now func() time.Time
}

// Store keeps each object as <key>.data with its content type in
// <key>.type.
type Store struct {
	cfg    Config
	secret []byte
}

// New opens (creating) the directory and its signing key.
func New(cfg Config) (*Store, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	secret, err := loadSecret(filepath.Join(cfg.Dir, secretFile))
	if err != nil {
		return nil, err
	}
	return &Store{cfg: cfg, secret: secret}, nil
}

func loadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	_, _ = rand.Read(b)
	// Two processes starting together on one --data: the first link wins.
	tmp := path + ".tmp" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return os.ReadFile(path)
}

// validKey: an attachment id, optionally with a suffix (".thumb").
func validKey(key string) bool {
	if key == "" || len(key) > 100 || strings.Count(key, ".") > 1 || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func (s *Store) path(key, ext string) string { return filepath.Join(s.cfg.Dir, key+ext) }

func (s *Store) sign(method, key string, expires int64, contentType string, size int64) string {
	m := hmac.New(sha256.New, s.secret)
	fmt.Fprintf(m, "%s\n%s\n%d\n%s\n%d", method, key, expires, contentType, size)
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Store) presign(method, key, contentType string, size int64, expiry time.Duration) (string, error) {
	if !validKey(key) {
		return "", fmt.Errorf("fsstore: bad key %q", key)
	}
	exp := s.cfg.Now().Add(expiry).Unix()
	q := url.Values{"expires": {strconv.FormatInt(exp, 10)}}
	if method == http.MethodPut {
		q.Set("content_type", contentType)
		q.Set("size", strconv.FormatInt(size, 10))
	}
	q.Set("sig", s.sign(method, key, exp, contentType, size))
	return s.cfg.BaseURL + Prefix + key + "?" + q.Encode(), nil
}

// PresignPut implements attachments.Store.
func (s *Store) PresignPut(_ context.Context, key, contentType string, size int64, expiry time.Duration) (string, error) {
	return s.presign(http.MethodPut, key, contentType, size, expiry)
}

// PresignGet implements attachments.Store.
func (s *Store) PresignGet(_ context.Context, key string, expiry time.Duration) (string, error) {
	return s.presign(http.MethodGet, key, "", 0, expiry)
}

// Stat implements attachments.Store.
func (s *Store) Stat(_ context.Context, key string) (attachments.Object, error) {
	if !validKey(key) {
		return attachments.Object{}, attachments.ErrNotFound
	}
	fi, err := os.Stat(s.path(key, ".data"))
	if errors.Is(err, fs.ErrNotExist) {
		return attachments.Object{}, attachments.ErrNotFound
	}
	if err != nil {
		return attachments.Object{}, err
	}
	ct, err := os.ReadFile(s.path(key, ".type"))
	if err != nil {
		return attachments.Object{}, err
	}
	return attachments.Object{Size: fi.Size(), ContentType: string(ct)}, nil
}

// Put implements attachments.Store.
func (s *Store) Put(_ context.Context, key, contentType string, data []byte) error {
	if !validKey(key) {
		return fmt.Errorf("fsstore: bad key %q", key)
	}
	_, err := s.write(key, contentType, bytes.NewReader(data), int64(len(data)), true)
	return err
}

// write stores exactly size bytes of r at key: the type first, then the
// data renamed into place, so a Stat that sees the data sees its type.
func (s *Store) write(key, contentType string, r io.Reader, size int64, replace bool) (int64, error) {
	f, err := os.CreateTemp(s.cfg.Dir, ".upload-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	n, err := io.Copy(f, io.LimitReader(r, size+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	if n != size {
		return n, errSize
	}
	if err := os.WriteFile(s.path(key, ".type"), []byte(contentType), 0o600); err != nil {
		return n, err
	}
	if !replace {
		// An upload URL stores once: what a message checked stays.
		if err := os.Link(f.Name(), s.path(key, ".data")); errors.Is(err, fs.ErrExist) {
			return n, errExists
		} else if err != nil {
			return n, err
		}
		return n, nil
	}
	return n, os.Rename(f.Name(), s.path(key, ".data"))
}

var (
	errSize   = errors.New("fsstore: body is not the size signed")
	errExists = errors.New("fsstore: the file was already uploaded")
)

// Open implements attachments.Store.
func (s *Store) Open(_ context.Context, key string) (io.ReadCloser, error) {
	if !validKey(key) {
		return nil, attachments.ErrNotFound
	}
	f, err := os.Open(s.path(key, ".data"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, attachments.ErrNotFound
	}
	return f, err
}

// Delete implements attachments.Store.
func (s *Store) Delete(_ context.Context, key string) error {
	if !validKey(key) {
		return nil
	}
	var errs []error
	for _, ext := range []string{".data", ".type"} {
		if err := os.Remove(s.path(key, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ServeHTTP serves Prefix: a GET (or HEAD) or PUT of a key with a valid,
// unexpired signature for that method; 403 otherwise. Files are served
// with nosniff and a sandbox policy, so nothing uploaded runs as a page
// of natter's origin.
func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok || !validKey(key) {
		http.NotFound(w, r)
		return
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if method != http.MethodGet && method != http.MethodPut {
		w.Header().Set("Allow", "GET, HEAD, PUT")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	var ct string
	var size int64
	if method == http.MethodPut {
		ct = q.Get("content_type")
		size, _ = strconv.ParseInt(q.Get("size"), 10, 64)
	}
	want := s.sign(method, key, exp, ct, size)
	if err != nil || !hmac.Equal([]byte(want), []byte(q.Get("sig"))) {
		http.Error(w, "signature does not match", http.StatusForbidden)
		return
	}
	if s.cfg.Now().Unix() > exp {
		http.Error(w, "URL expired", http.StatusForbidden)
		return
	}
	if method == http.MethodPut {
		s.put(w, r, key, ct, size)
		return
	}
	s.get(w, r, key)
}

func (s *Store) put(w http.ResponseWriter, r *http.Request, key, ct string, size int64) {
	if r.ContentLength != size {
		http.Error(w, fmt.Sprintf("Content-Length must be %d", size), http.StatusBadRequest)
		return
	}
	if r.Header.Get("Content-Type") != ct {
		http.Error(w, fmt.Sprintf("Content-Type must be %s", ct), http.StatusBadRequest)
		return
	}
	if _, err := s.write(key, ct, r.Body, size, false); err != nil {
		if errors.Is(err, errSize) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if errors.Is(err, errExists) {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		http.Error(w, "cannot store the file", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Store) get(w http.ResponseWriter, r *http.Request, key string) {
	f, err := os.Open(s.path(key, ".data"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ct, _ := os.ReadFile(s.path(key, ".type"))
	h := w.Header()
	h.Set("Content-Type", string(ct))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Cache-Control", "private, max-age=300")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}
