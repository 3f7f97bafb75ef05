package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/services"
)

const serviceUsage = `usage:
  natter service add <name> --as <uid,uid...>   register a service (or change its senders) and write its credentials
  natter service ls                             list the services and their senders
  natter service rm <name>                      remove a service: its NATS user stops working at once
  natter service rotate <name>                  give a service a new password: the old one stops working at once
  natter service webhook <name> [--secret S] <https URL>   POST the service's events to URL, signed (docs/bots.md)
  natter service webhook <name> --off           stop POSTing: the service pulls its events consumer again
flags (every subcommand): --data DIR, --nats-url URL (default: the operator URL in <data>/nats.url), --ca FILE`

// serviceCmd manages service identities (package services): each is a
// record in the SERVICES bucket, which every NATS node watches to install
// the service's NATS user, and a credentials file under --data.
func serviceCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, serviceUsage)
		return errors.New("missing subcommand")
	}
	sub, args := args[0], args[1:]
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("natter service "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "./data", "data directory: where nats.url is read and the service's credentials file is written")
	natsURL := fs.String("nats-url", "", "the operator's NATS URL (default: the content of <data>/nats.url)")
	ca := fs.String("ca", "", "PEM file of the CA of a tls:// URL")
	as := fs.String("as", "", "comma-separated sender (user) ids the service may post as (add)")
	secret := fs.String("secret", "", "the webhook's signing secret, 16 bytes or more (webhook; default: a new random one, printed)")
	off := fs.Bool("off", false, "remove the service's webhook (webhook)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var hookURL string
	if sub == "webhook" && fs.NArg() > 0 {
		// The URL may come before the flags too.
		hookURL = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	if sub != "ls" && !schema.ValidServiceName(name) {
		return fmt.Errorf("service name %q: want [a-z][a-z0-9-]{0,31}", name)
	}
	u := *natsURL
	if u == "" {
		data, err := os.ReadFile(filepath.Join(*dataDir, "nats.url"))
		if err != nil {
			return fmt.Errorf("no --nats-url and %w", err)
		}
		u = strings.TrimSpace(string(data))
	}
	opts := []nats.Option{nats.Name("natter-service")}
	if *ca != "" {
		opts = append(opts, nats.RootCAs(*ca))
	}
	nc, err := nats.Connect(u, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := services.Open(ctx, js, nil)
	if err != nil {
		return fmt.Errorf("%w (has the operator created the schema? %s)", err, schema.OperatorStep)
	}
	sc := serviceCtx{reg: reg, dataDir: *dataDir, natsURL: u, ca: *ca, stdout: stdout}
	switch sub {
	case "add":
		var senders []string
		for _, s := range strings.Split(*as, ",") {
			if s = strings.TrimSpace(s); s != "" {
				senders = append(senders, s)
			}
		}
		if len(senders) == 0 {
			return errors.New("add needs --as <sender ids>")
		}
		return sc.add(ctx, name, senders)
	case "ls":
		return sc.ls(ctx)
	case "rm":
		path := filepath.Join(*dataDir, natsrv.ServiceURLFile(name))
		old, _ := os.ReadFile(path)
		if err := reg.Delete(ctx, name); err != nil {
			return err
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if len(old) > 0 {
			if err := sc.awaitRefused(ctx, strings.TrimSpace(string(old))); err != nil {
				return fmt.Errorf("service %s removed, but: %w", name, err)
			}
		}
		fmt.Fprintf(stdout, "removed service %s (NATS user %s)\n", name, schema.ServiceUser(name))
		return nil
	case "rotate":
		s, err := reg.Get(ctx, name)
		if err != nil {
			return err
		}
		return sc.credentials(ctx, s, "rotated")
	case "webhook":
		return sc.webhook(ctx, name, hookURL, *secret, *off)
	}
	fmt.Fprintln(stderr, serviceUsage)
	return fmt.Errorf("unknown subcommand %q", sub)
}

type serviceCtx struct {
	reg              *services.Registry
	dataDir, natsURL string
	ca               string
	stdout           io.Writer
}

func (sc *serviceCtx) add(ctx context.Context, name string, senders []string) error {
	s, err := sc.reg.Get(ctx, name)
	if errors.Is(err, services.ErrNotFound) {
		return sc.credentials(ctx, &services.Service{Name: name, Senders: senders}, "added")
	} else if err != nil {
		return err
	}
	s.Senders = senders
	if err := sc.reg.Put(ctx, s); err != nil {
		return err
	}
	fmt.Fprintf(sc.stdout, "service %s now posts as %s; its credentials are unchanged\n", name, strings.Join(s.Senders, ","))
	return nil
}

// awaitRefused connects with credentials that were just revoked until a
// node refuses them (the nodes watch the registry), for up to 10 s.
func (sc *serviceCtx) awaitRefused(ctx context.Context, oldURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	opts := []nats.Option{nats.NoReconnect(), nats.Timeout(2 * time.Second)}
	if sc.ca != "" {
		opts = append(opts, nats.RootCAs(sc.ca))
	}
	for {
		nc, err := nats.Connect(oldURL, opts...)
		if errors.Is(err, nats.ErrAuthorization) {
			return nil
		}
		if nc != nil {
			nc.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("a NATS node still accepted the old credentials after 10 s (is every node running?): %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// credentials gives s a new password, stores its hash, writes the
// credentials file and waits until the server accepts it.
func (sc *serviceCtx) credentials(ctx context.Context, s *services.Service, what string) error {
	path := filepath.Join(sc.dataDir, natsrv.ServiceURLFile(s.Name))
	old, _ := os.ReadFile(path)
	pw, err := natsrv.NewPassword()
	if err != nil {
		return err
	}
	if s.PasswordHash, err = services.HashPassword(pw); err != nil {
		return err
	}
	if err := sc.reg.Put(ctx, s); err != nil {
		return err
	}
	var hosts []string
	tls := false
	for _, raw := range strings.Split(sc.natsURL, ",") {
		pu, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || pu.Host == "" {
			return fmt.Errorf("NATS URL %q: no host", natsrv.RedactURLs(raw))
		}
		hosts, tls = append(hosts, pu.Host), pu.Scheme == "tls"
	}
	svcURL := natsrv.ServiceURLs(hosts, s.Name, pw, tls)
	if err := natsrv.WriteSecretFile(path, []byte(svcURL+"\n")); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := sc.await(ctx, svcURL); err != nil {
		return fmt.Errorf("service %s %s, credentials in %s, but: %w", s.Name, what, path, err)
	}
	if len(old) > 0 && strings.TrimSpace(string(old)) != svcURL {
		if err := sc.awaitRefused(ctx, strings.TrimSpace(string(old))); err != nil {
			return fmt.Errorf("service %s %s, credentials in %s, but: %w", s.Name, what, path, err)
		}
	}
	fmt.Fprintf(sc.stdout, "service %s %s: NATS user %s, posts as %s\ncredentials: %s\n", s.Name, what,
		schema.ServiceUser(s.Name), strings.Join(s.Senders, ","), path)
	return nil
}

// await connects with the new credentials until a node has installed
// them (the nodes watch the registry), for up to 10 s.
func (sc *serviceCtx) await(ctx context.Context, svcURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	opts := []nats.Option{nats.NoReconnect(), nats.Timeout(2 * time.Second)}
	if sc.ca != "" {
		opts = append(opts, nats.RootCAs(sc.ca))
	}
	for {
		nc, err := nats.Connect(svcURL, opts...)
		if err == nil {
			nc.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no NATS node accepted the new credentials within 10 s (is a natter nats or natter serve running?): %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (sc *serviceCtx) ls(ctx context.Context) error {
	all, err := sc.reg.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(sc.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tNATS USER\tSENDERS\tWEBHOOK\tCREATED\tUPDATED")
	for _, s := range all {
		hook := "-"
		if s.Webhook != nil {
			hook = s.Webhook.URL
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, schema.ServiceUser(s.Name), strings.Join(s.Senders, ","),
			hook, s.Created.Format(time.RFC3339), s.Updated.Format(time.RFC3339))
	}
	return tw.Flush()
}
