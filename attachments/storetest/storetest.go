// Package storetest is the conformance suite every attachments.Store
// passes: presigned URLs used over real HTTP, and refused once tampered
// with, expired, or used for what they were not signed for.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/attachments"
)

// Run runs the suite against s. base resolves relative URLs (the server
// that serves them); keys are made unique with prefix, so runs may share
// a bucket.
func Run(t *testing.T, s attachments.Store, base, prefix string) {
	ctx := context.Background()
	key := func(name string) string { return strings.ReplaceAll(prefix+"_"+name, "/", "_") }
	t.Run("PutThenGet", func(t *testing.T) {
		k := key("roundtrip")
		data := []byte("hello, attachments")
		put := presignPut(t, s, k, "text/plain", int64(len(data)), time.Minute)
		if code := do(t, base, http.MethodPut, put, "text/plain", data); code/100 != 2 {
			t.Fatalf("PUT: HTTP %d", code)
		}
		obj, err := s.Stat(ctx, k)
		if err != nil || obj.Size != int64(len(data)) || obj.ContentType != "text/plain" {
			t.Fatalf("Stat = %+v, %v; want %d bytes of text/plain", obj, err, len(data))
		}
		get, err := s.PresignGet(ctx, k, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		body, code := fetch(t, base, get)
		if code != http.StatusOK || !bytes.Equal(body, data) {
			t.Fatalf("GET: HTTP %d %q; want 200 %q", code, body, data)
		}
		r, err := s.Open(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		_ = r.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("Open read %q", got)
		}
		if err := s.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, k); !errors.Is(err, attachments.ErrNotFound) {
			t.Fatalf("Stat after Delete: %v; want ErrNotFound", err)
		}
		if _, code := fetch(t, base, get); code/100 == 2 {
			t.Fatalf("GET after Delete: HTTP %d", code)
		}
		if err := s.Delete(ctx, k); err != nil {
			t.Fatalf("Delete of a missing key: %v", err)
		}
	})
	t.Run("TamperedURLsRefused", func(t *testing.T) {
		k, other := key("tamper"), key("tamper2")
		if err := s.Put(ctx, k, "text/plain", []byte("secret")); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, other, "text/plain", []byte("other")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Delete(ctx, k); _ = s.Delete(ctx, other) })
		get, err := s.PresignGet(ctx, k, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// The same signature for another key.
		swapped := strings.Replace(get, k, other, 1)
		if body, code := fetch(t, base, swapped); code/100 == 2 {
			t.Fatalf("GET of another key with k's signature: HTTP %d %q", code, body)
		}
		// No query at all: the object is not public.
		if body, code := fetch(t, base, strings.SplitN(get, "?", 2)[0]); code/100 == 2 {
			t.Fatalf("GET without a signature: HTTP %d %q", code, body)
		}
		// A GET URL does not PUT.
		if code := do(t, base, http.MethodPut, get, "text/plain", []byte("evil!!")); code/100 == 2 {
			t.Fatalf("PUT with a GET URL: HTTP %d", code)
		}
		if body, _ := fetch(t, base, get); string(body) != "secret" {
			t.Fatalf("object became %q", body)
		}
	})
	t.Run("PutBoundToContentType", func(t *testing.T) {
		k := key("ctype")
		t.Cleanup(func() { _ = s.Delete(ctx, k) })
		put := presignPut(t, s, k, "image/png", 4, time.Minute)
		if code := do(t, base, http.MethodPut, put, "text/html", []byte("<h1>")); code/100 == 2 {
			if obj, err := s.Stat(ctx, k); err == nil && obj.ContentType == "text/html" {
				t.Fatalf("PUT with another content type stored text/html (HTTP %d)", code)
			}
		}
	})
	t.Run("ExpiredURLsRefused", func(t *testing.T) {
		k := key("expired")
		if err := s.Put(ctx, k, "text/plain", []byte("old")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Delete(ctx, k) })
		get, err := s.PresignGet(ctx, k, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		put := presignPut(t, s, key("expired-put"), "text/plain", 3, time.Second)
		time.Sleep(2500 * time.Millisecond)
		if body, code := fetch(t, base, get); code/100 == 2 {
			t.Fatalf("GET after expiry: HTTP %d %q", code, body)
		}
		if code := do(t, base, http.MethodPut, put, "text/plain", []byte("new")); code/100 == 2 {
			t.Fatalf("PUT after expiry: HTTP %d", code)
		}
	})
	t.Run("StatMissing", func(t *testing.T) {
		if _, err := s.Stat(ctx, key("missing")); !errors.Is(err, attachments.ErrNotFound) {
			t.Fatalf("Stat of a missing key: %v; want ErrNotFound", err)
		}
		if _, err := s.Open(ctx, key("missing")); !errors.Is(err, attachments.ErrNotFound) {
			t.Fatalf("Open of a missing key: %v; want ErrNotFound", err)
		}
	})
}

func presignPut(t *testing.T, s attachments.Store, k, ct string, size int64, expiry time.Duration) string {
	t.Helper()
	u, err := s.PresignPut(context.Background(), k, ct, size, expiry)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Resolve makes u absolute against base.
func Resolve(base, u string) string {
	b, err := url.Parse(base)
	if err != nil {
		return u
	}
	r, err := b.Parse(u)
	if err != nil {
		return u
	}
	return r.String()
}

func do(t *testing.T, base, method, u, ct string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, Resolve(base, u), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func fetch(t *testing.T, base, u string) ([]byte, int) {
	t.Helper()
	resp, err := http.Get(Resolve(base, u))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b, resp.StatusCode
}
