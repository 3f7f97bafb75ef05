// Package web serves Natter's chat web app: the built assets under dist/,
// embedded into the binary so that natter serve needs no Node at run time,
// and, for --dev servers only, an endpoint that hands out tokens.
//
// dist/ is committed; rebuild it with `go tool task web:build` (npm ci and
// esbuild) after changing the TypeScript under app/ or client/.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
)

//go:embed dist
var dist embed.FS

// file is one embedded asset, read once.
type file struct {
	body        []byte
	contentType string
	etag        string
	immutable   bool // its name carries a content hash
}

// Handler serves the web app: index.html at "/" (revalidated on every load)
// and the hashed assets under /assets/ (cached for a year). Anything else
// is 404. mediaOrigins (scheme://host[:port], e.g. an S3 bucket's) are
// added to the policy's img-src and connect-src, so the app may show
// attachments from there and PUT uploads to it; PolicyWith says which are
// taken.
func Handler(mediaOrigins ...string) http.Handler {
	files := load()
	csp := PolicyWith(mediaOrigins...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "index.html"
		}
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		setSecurityHeaders(h)
		h.Set("Content-Security-Policy", csp)
		h.Set("Content-Type", f.contentType)
		h.Set("ETag", f.etag)
		if f.immutable {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		// ServeContent answers If-None-Match (304), Range and HEAD.
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
	})
}

// ContentSecurityPolicy is the policy the web app is served with. Scripts,
// styles and everything else load only from this origin, with no inline
// script or style and no eval, so injected markup cannot run code or send
// the token elsewhere; the WebSocket and /dev/token are same-origin
// ('self' covers ws: and wss: to this host); data: is for the empty
// favicon; no site may frame the app (clickjacking).
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// PolicyWith is ContentSecurityPolicy with origins allowed as image
// sources and connection targets (attachments' presigned GET and PUT
// URLs). An origin is taken only as scheme://host[:port] of an http or
// https URL with nothing else (no path, user, query, wildcard): anything
// that could widen the policy or add a directive is left out.
func PolicyWith(origins ...string) string {
	var extra []string
	for _, o := range origins {
		if o = cleanOrigin(o); o != "" && !slices.Contains(extra, o) {
			extra = append(extra, o)
		}
	}
	if len(extra) == 0 {
		return ContentSecurityPolicy
	}
	add := " " + strings.Join(extra, " ")
	p := strings.Replace(ContentSecurityPolicy, "img-src 'self' data:;", "img-src 'self' data:"+add+";", 1)
	return strings.Replace(p, "connect-src 'self';", "connect-src 'self'"+add+";", 1)
}

// cleanOrigin returns o as scheme://host[:port], or "" when o is not
// exactly an http(s) origin.
func cleanOrigin(o string) string {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return ""
	}
	if strings.ContainsAny(u.Host, " ;,'*\"\\") {
		return ""
	}
	return u.Scheme + "://" + strings.ToLower(u.Host)
}

// setSecurityHeaders sets what every response of the web app carries.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY") // frame-ancestors for browsers without CSP 2
}

// contentTypes fixes the types of what the build emits, so they do not
// depend on the host's /etc/mime.types.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".map":  "application/json",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

// load reads dist once into memory: a few hundred kilobytes.
func load() map[string]file {
	files := map[string]file{}
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees dist exists
	}
	_ = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(path.Base(name), ".") {
			return err
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			ct = mime.TypeByExtension(path.Ext(name))
		}
		if ct == "" {
			ct = http.DetectContentType(body)
		}
		files[name] = file{
			body:        body,
			contentType: ct,
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
			immutable:   strings.HasPrefix(name, "assets/"),
		}
		return nil
	})
	return files
}

// validUser mirrors the protocol's id rule, [A-Za-z0-9_-]{1,64}.
func validUser(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// DevTokenHandler answers GET /dev/token?user=alice with
// {"user":"alice","token":"<JWT>"} from issue. It lets anyone sign in as
// anyone, so natter mounts it only for --dev servers.
func DevTokenHandler(issue func(user string) (string, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		w.Header().Set("Cache-Control", "no-store")
		user := r.URL.Query().Get("user")
		if !validUser(user) {
			http.Error(w, "user must match [A-Za-z0-9_-]{1,64}", http.StatusBadRequest)
			return
		}
		tok, err := issue(user)
		if err != nil {
			http.Error(w, "cannot issue a token", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			User  string `json:"user"`
			Token string `json:"token"`
		}{user, tok})
	})
}
