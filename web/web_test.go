package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandler(t *testing.T) {
	h := Handler()
	index := get(t, h, "/", nil)
	body, _ := io.ReadAll(index.Body)
	if index.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d", index.StatusCode)
	}
	if ct := index.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("index Content-Type = %q", ct)
	}
	if cc := index.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("index Cache-Control = %q", cc)
	}
	// index.html names the hashed assets; each is served with its type and
	// cached for good.
	for _, tt := range []struct{ attr, prefix string }{{`src="`, "text/javascript"}, {`href="/assets/`, "text/css"}} {
		i := strings.Index(string(body), tt.attr)
		if i < 0 {
			t.Fatalf("index.html has no %s", tt.attr)
		}
		rest := string(body[i+len(tt.attr):])
		asset := rest[:strings.IndexByte(rest, '"')]
		if !strings.HasPrefix(asset, "/assets/") {
			asset = "/assets/" + asset
		}
		t.Run(asset, func(t *testing.T) {
			res := get(t, h, asset, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d", asset, res.StatusCode)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.prefix) {
				t.Errorf("Content-Type = %q, want %s", ct, tt.prefix)
			}
			if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
				t.Errorf("Cache-Control = %q", cc)
			}
			again := get(t, h, asset, map[string]string{"If-None-Match": res.Header.Get("ETag")})
			if again.StatusCode != http.StatusNotModified {
				t.Errorf("conditional GET = %d, want 304", again.StatusCode)
			}
		})
	}
	for _, p := range []string{"/nope", "/assets/missing.js", "/../web.go"} {
		if res := get(t, h, p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, res.StatusCode)
		}
	}
}

func TestDevTokenHandler(t *testing.T) {
	h := DevTokenHandler(func(user string) (string, error) {
		if user == "broken" {
			return "", errors.New("boom")
		}
		return "tok-" + user, nil
	})
	tests := []struct {
		target string
		status int
		token  string
	}{
		{"/dev/token?user=alice", http.StatusOK, "tok-alice"},
		{"/dev/token", http.StatusBadRequest, ""},
		{"/dev/token?user=a.b", http.StatusBadRequest, ""},
		{"/dev/token?user=" + strings.Repeat("x", 65), http.StatusBadRequest, ""},
		{"/dev/token?user=broken", http.StatusInternalServerError, ""},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			res := get(t, h, tt.target, nil)
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.status)
			}
			if res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q", res.Header.Get("Cache-Control"))
			}
			if tt.token == "" {
				return
			}
			var got struct{ User, Token string }
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil || got.Token != tt.token || got.User != "alice" {
				t.Fatalf("body = %+v, %v", got, err)
			}
		})
	}
}

// TestSecurityHeaders checks the headers the app is served with: a
// Content-Security-Policy that allows only this origin and no inline
// script, nosniff, no referrer, no framing; and that the embedded
// index.html has no inline script or style the policy would block.
func TestSecurityHeaders(t *testing.T) {
	h := Handler()
	devTokens := DevTokenHandler(func(string) (string, error) { return "tok", nil })
	for _, tc := range []struct {
		name string
		h    http.Handler
		path string
	}{{"index", h, "/"}, {"dev token", devTokens, "/dev/token?user=alice"}} {
		t.Run(tc.name, func(t *testing.T) {
			res := get(t, tc.h, tc.path, nil)
			csp := res.Header.Get("Content-Security-Policy")
			directives := map[string]string{}
			for d := range strings.SplitSeq(csp, ";") {
				name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
				directives[name] = value
			}
			for name, want := range map[string]string{
				"default-src": "'self'", "script-src": "'self'", "style-src": "'self'",
				"connect-src": "'self'", "frame-ancestors": "'none'", "object-src": "'none'", "base-uri": "'none'",
			} {
				if directives[name] != want {
					t.Errorf("CSP %s = %q, want %q (policy %q)", name, directives[name], want, csp)
				}
			}
			if strings.Contains(csp, "unsafe-") {
				t.Errorf("CSP allows unsafe sources: %q", csp)
			}
			for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
				if got := res.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}

	body, _ := io.ReadAll(get(t, h, "/", nil).Body)
	page := strings.ToLower(string(body))
	for rest := page; ; {
		i := strings.Index(rest, "<script")
		if i < 0 {
			break
		}
		tag := rest[i : i+strings.IndexByte(rest[i:], '>')+1]
		if !strings.Contains(tag, "src=") || !strings.HasPrefix(rest[i+len(tag):], "</script>") {
			t.Errorf("index.html has an inline script: %s", tag)
		}
		rest = rest[i+len(tag):]
	}
	for _, inline := range []string{"<style", " style=", "javascript:", " onload=", " onclick="} {
		if strings.Contains(page, inline) {
			t.Errorf("index.html contains %q, which the policy blocks", inline)
		}
	}
}
