package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"time"

	"github.com/natter-chat/natter/attachments"
	"github.com/natter-chat/natter/attachments/s3store"
)

// s3Flags declares the S3 store's flags; the function returned opens the
// store once they are parsed.
func s3Flags(fs *flag.FlagSet) func() (attachments.Store, error) {
	endpoint := fs.String("s3-endpoint", "", "host:port of the S3 API (--attachments s3), as clients reach it: presigned URLs name it")
	bucket := fs.String("s3-bucket", "natter-attachments", "bucket of the attachments (created when missing)")
	prefix := fs.String("s3-prefix", "", "prefix of every object key, to share a bucket")
	region := fs.String("s3-region", "us-east-1", "region of the bucket")
	insecure := fs.Bool("s3-insecure", false, "plain http to --s3-endpoint (a test server on loopback)")
	access := fs.String("s3-access-key", os.Getenv("NATTER_S3_ACCESS_KEY"), "access key (env NATTER_S3_ACCESS_KEY)")
	return func() (attachments.Store, error) {
		if *endpoint == "" {
			return nil, errors.New("--attachments s3 needs --s3-endpoint")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return s3store.New(ctx, s3store.Config{
			Endpoint: *endpoint, Secure: !*insecure, Region: *region, Bucket: *bucket, Prefix: *prefix,
			// The secret only from the environment: flags show in ps.
			AccessKey: *access, SecretKey: os.Getenv("NATTER_S3_SECRET_KEY"),
		})
	}
}
