package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// directives splits a policy into its directives' values.
func directives(csp string) map[string]string {
	out := map[string]string{}
	for d := range strings.SplitSeq(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		out[name] = value
	}
	return out
}

// An attachments origin (an S3 bucket's) is allowed as an image source
// and a connection target (presigned GET shown as <img>, presigned PUT by
// fetch), and nowhere else; the rest of the policy is unchanged.
func TestPolicyWithMediaOrigin(t *testing.T) {
	h := Handler("https://natter.s3.eu-west-1.amazonaws.com", "http://127.0.0.1:9000/")
	res := httptest.NewRecorder()
	h.ServeHTTP(res, httptest.NewRequest(http.MethodGet, "/", nil))
	got := directives(res.Header().Get("Content-Security-Policy"))
	want := directives(ContentSecurityPolicy)
	want["img-src"] = "'self' data: https://natter.s3.eu-west-1.amazonaws.com http://127.0.0.1:9000"
	want["connect-src"] = "'self' https://natter.s3.eu-west-1.amazonaws.com http://127.0.0.1:9000"
	for name, v := range want {
		if got[name] != v {
			t.Errorf("CSP %s = %q, want %q", name, got[name], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("CSP directives %v, want %v", got, want)
	}
	if p := PolicyWith(); p != ContentSecurityPolicy {
		t.Errorf("PolicyWith() = %q, want the default policy", p)
	}
}

// Only a plain http(s) origin is taken: nothing that could widen the
// policy or add a directive.
func TestPolicyWithRejectsNonOrigins(t *testing.T) {
	for _, o := range []string{
		"", "*", "https://*.example.com", "https://a.example.com; script-src *", "https://a.example.com/path",
		"javascript:alert(1)", "data:", "https://user:pw@a.example.com", "https://a.example.com?x=1", "a.example.com",
		"'unsafe-inline'", "ftp://a.example.com", "https://a.example.com 'unsafe-eval'",
	} {
		if p := PolicyWith(o); p != ContentSecurityPolicy {
			t.Errorf("PolicyWith(%q) = %q, want the default policy", o, p)
		}
	}
	if p := PolicyWith("HTTPS://Bucket.Example.com", "https://bucket.example.com"); strings.Count(p, "https://bucket.example.com") != 2 {
		t.Errorf("origins not normalised and de-duplicated: %q", p)
	}
}
