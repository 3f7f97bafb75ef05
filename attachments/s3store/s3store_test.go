package s3store_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/attachments/s3store"
	"github.com/natter-chat/natter/attachments/storetest"
)

// Config returns the S3 endpoint of NATTER_S3_ENDPOINT
// (deploy/s3/with.sh sets it, with NATTER_S3_ACCESS_KEY and
// NATTER_S3_SECRET_KEY). Without it the test is skipped, loudly, and
// fails under CI.
func config(t *testing.T) s3store.Config {
	t.Helper()
	ep := os.Getenv("NATTER_S3_ENDPOINT")
	if ep == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("NATTER_S3_ENDPOINT is not set: CI runs the S3 store suite against S3Proxy (deploy/s3/with.sh)")
		}
		t.Skip("SKIPPED: no NATTER_S3_ENDPOINT; run deploy/s3/with.sh go test ./attachments/s3store/")
	}
	return s3store.Config{
		Endpoint:  ep,
		Bucket:    "natter-test",
		Prefix:    strings.ReplaceAll(t.Name(), "/", "_") + strconv.FormatInt(time.Now().UnixNano(), 36) + "/",
		AccessKey: os.Getenv("NATTER_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("NATTER_S3_SECRET_KEY"),
	}
}

func TestConformance(t *testing.T) {
	s, err := s3store.New(t.Context(), config(t))
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, s, "", "s3")
}
