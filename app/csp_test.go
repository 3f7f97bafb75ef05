package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/natter-chat/natter/attachments"
	"github.com/natter-chat/natter/web"
)

// s3Like is an attachments store whose presigned URLs point at a bucket's
// origin, as s3store's do; only Origin is called here.
type s3Like struct{ attachments.Store }

func (s3Like) Origin(context.Context) (string, error) { return "https://natter.s3.example.com", nil }

// With the attachments in S3 the bundled web app's policy allows the
// bucket's origin for images and connections (presigned GET and PUT);
// with the filesystem store it names its PublicURL, without one only the
// app's own origin.
func TestWebPolicyNamesTheAttachmentsOrigin(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  AttachmentsConfig
		want string
	}{
		{"s3", AttachmentsConfig{Store: s3Like{}}, "https://natter.s3.example.com"},
		{"fs with public URL", AttachmentsConfig{Dir: t.TempDir(), PublicURL: "https://files.example.com"}, "https://files.example.com"},
		{"fs", AttachmentsConfig{Dir: t.TempDir()}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &App{cfg: Config{Web: true, Attachments: tc.cfg}}
			origins, err := a.mediaOrigins(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			res := httptest.NewRecorder()
			mux.Handle("GET /", web.Handler(origins...))
			mux.ServeHTTP(res, httptest.NewRequest(http.MethodGet, "/", nil))
			csp := res.Header().Get("Content-Security-Policy")
			for _, d := range []string{"img-src", "connect-src"} {
				i := strings.Index(csp, d)
				val := csp[i:]
				val = val[:strings.Index(val, ";")]
				if tc.want != "" && !strings.Contains(val, tc.want) {
					t.Errorf("%s lacks %s: %q", d, tc.want, csp)
				}
				if tc.want == "" && strings.Contains(val, "http") {
					t.Errorf("%s names another origin: %q", d, csp)
				}
			}
		})
	}
}
