package s3store

import (
	"context"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The origin the web app must allow is the presigned URLs': path-style
// for a plain endpoint, the bucket's own host for AWS (virtual-host
// style). Presigning is local: no server is needed.
func TestOrigin(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		secure   bool
		want     string
	}{
		{"127.0.0.1:9000", false, "http://127.0.0.1:9000"},
		{"s3.example.com", true, "https://s3.example.com"},
		{"s3.eu-west-1.amazonaws.com", true, "https://natter-bucket.s3.dualstack.eu-west-1.amazonaws.com"}, // what minio-go presigns
	} {
		c, err := minio.New(tc.endpoint, &minio.Options{Creds: credentials.NewStaticV4("k", "s", ""), Secure: tc.secure, Region: "eu-west-1"})
		if err != nil {
			t.Fatal(err)
		}
		s := &Store{c: c, bucket: "natter-bucket", prefix: "p/"}
		got, err := s.Origin(context.Background())
		if err != nil || got != tc.want {
			t.Errorf("Origin of %s = %q, %v; want %q", tc.endpoint, got, err, tc.want)
		}
	}
}
