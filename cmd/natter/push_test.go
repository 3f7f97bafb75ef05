package main

import (
	"flag"
	"io"
	"slices"
	"testing"

	"github.com/natter-chat/natter/pushnotify/webpush"
)

func TestWebPushAllowHostsFlag(t *testing.T) {
	parse := func(args ...string) ([]string, error) {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		build := pushFlags(fs)
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		pc, err := build()
		return pc.WebPushEndpoints.AllowHosts, err
	}
	if got, err := parse(); err != nil || !slices.Equal(got, webpush.DefaultAllowHosts) {
		t.Errorf("default: %v, %v; want %v", got, err, webpush.DefaultAllowHosts)
	}
	if got, err := parse("--webpush-allow-hosts", " push.example.com, *.push.example.net ,"); err != nil || !slices.Equal(got, []string{"push.example.com", "*.push.example.net"}) {
		t.Errorf("list: %v, %v", got, err)
	}
	if got, err := parse("--webpush-allow-hosts", "*"); err != nil || !slices.Equal(got, []string{webpush.AnyPublicHost}) {
		t.Errorf("any: %v, %v", got, err)
	}
	for _, bad := range []string{"", " , ", "https://push.example.com", "*.", "a*b.example"} {
		if _, err := parse("--webpush-allow-hosts", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
