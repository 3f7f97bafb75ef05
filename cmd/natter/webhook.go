package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/services"
	"github.com/natter-chat/natter/services/webhook"
)

// webhook sets (or with off removes) service name's webhook. The URL is
// checked against the dispatcher's SSRF rules first (https, a public
// address); without a secret a random one is made and printed once, for
// the receiver to verify signatures with.
func (sc *serviceCtx) webhook(ctx context.Context, name, url, secret string, off bool) error {
	s, err := sc.reg.Get(ctx, name)
	if err != nil {
		return err
	}
	if off {
		s.Webhook = nil
		if err := sc.reg.Put(ctx, s); err != nil {
			return err
		}
		fmt.Fprintf(sc.stdout, "service %s has no webhook: it reads its events from its consumer\n", name)
		return nil
	}
	if url == "" {
		return errors.New("webhook needs a URL (or --off)")
	}
	d, err := webhook.New(webhook.Config{}, nil, nil)
	if err != nil {
		return err
	}
	if err := d.Check(ctx, url); err != nil {
		return fmt.Errorf("webhook %s (the rules of Web Push endpoints: https, a public address): %w", url, err)
	}
	printSecret := secret == ""
	if printSecret {
		if secret, err = natsrv.NewPassword(); err != nil {
			return err
		}
	}
	s.Webhook = &services.Webhook{URL: url, Secret: secret}
	if err := sc.reg.Put(ctx, s); err != nil {
		return err
	}
	fmt.Fprintf(sc.stdout, "service %s: events are POSTed to %s\n", name, url)
	if printSecret {
		fmt.Fprintf(sc.stdout, "signing secret (shown once): %s\n", secret)
	}
	return nil
}
