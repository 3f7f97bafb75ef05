package main

import (
	"errors"
	"flag"
	"path/filepath"
	"time"

	"github.com/natter-chat/natter/app"
)

// attachmentFlags declares the attachment flags of serve, gateway and
// history (which deletes erased users' and expired files: give it the
// gateways' store); the function returned fills cfg.Attachments once they
// are parsed.
func attachmentFlags(fs *flag.FlagSet) func(cfg *app.Config, dataDir string) error {
	backend := fs.String("attachments", "fs", `where attachments are stored: "fs" (files under --attachments-dir, served by natter at /v1/files/), "s3" (--s3-endpoint ...; secret key in env NATTER_S3_SECRET_KEY) or "off"; natter history alone: none unless given (then the gateways' store, which it deletes erased and expired files from)`)
	dir := fs.String("attachments-dir", "", "directory of the fs attachment store; default <data>/attachments (gateways sharing it must share the directory)")
	publicURL := fs.String("attachments-public-url", "", "scheme://host the fs store's URLs start with, when clients reach natter through a proxy under another name; default: relative URLs")
	maxSize := fs.Int64("attachment-max-size", 25<<20, "largest attachment, in bytes")
	quota := fs.Int64("attachment-quota", 1<<30, "bytes of attachments one user may store, unreferenced uploads included")
	abandoned := fs.Duration("attachment-abandoned", 24*time.Hour, "how long an upload no message references is kept before the sweeper deletes it")
	s3 := s3Flags(fs)
	return func(cfg *app.Config, dataDir string) error {
		c := &cfg.Attachments
		c.Service.MaxSize, c.Service.Quota, c.Service.Abandoned = *maxSize, *quota, *abandoned
		switch *backend {
		case "off":
			return nil
		case "fs":
			c.Dir, c.PublicURL = *dir, *publicURL
			if c.Dir == "" {
				c.Dir = filepath.Join(dataDir, "attachments")
			}
			return nil
		case "s3":
			store, err := s3()
			if err != nil {
				return err
			}
			c.Store = store
			return nil
		}
		return errors.New(`--attachments must be "fs", "s3" or "off"`)
	}
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
