package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/webpush"
	"github.com/natter-chat/natter/services"
)

// errPermanent marks a failure no retry can fix: the URL is refused, or
// the receiver answered 4xx (besides 408 and 429).
var errPermanent = errors.New("webhook: permanent failure")

// Services lists the registered services; *services.Index is one.
type Services interface {
	Services() []services.Service
}

var _ Services = (*services.Index)(nil)

// Config tunes a Dispatcher. The zero value is filled with defaults.
type Config struct {
	// Endpoints is the SSRF policy of webhook URLs: Web Push's, with any
	// public host allowed (AllowHosts empty means webpush.AnyPublicHost
	// here). Only tests set AllowPrivate.
	Endpoints webpush.EndpointPolicy
	// HTTPClient sends the POSTs (default: a 10 s timeout); it is
	// guarded by Endpoints, so its Transport must be an *http.Transport.
	HTTPClient *http.Client
	// Retry bounds the attempts of one event and the backoff between
	// them (default 8 attempts, 1 s doubling to 2 min, full jitter); then
	// the event goes to SVC_WEBHOOK_DLQ.
	Retry pushnotify.Policy
	// Poll is how often the dispatcher looks for services whose webhook
	// was set, changed or removed (default 1 s).
	Poll time.Duration
	// Logger; slog.Default by default.
	Logger *slog.Logger
	// Now is the clock of the signatures.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if len(c.Endpoints.AllowHosts) == 0 {
		c.Endpoints.AllowHosts = []string{webpush.AnyPublicHost}
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Retry.MaxAttempts <= 0 {
		c.Retry.MaxAttempts = 8
	}
	if c.Retry.BaseDelay <= 0 {
		c.Retry.BaseDelay = time.Second
	}
	if c.Retry.MaxDelay <= 0 {
		c.Retry.MaxDelay = 2 * time.Minute
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Dispatcher delivers the events of every service with a webhook.
type Dispatcher struct {
	cfg    Config
	js     jetstream.JetStream
	svcs   Services
	client *http.Client
}

// New returns a Dispatcher; Run starts it.
func New(cfg Config, js jetstream.JetStream, svcs Services) (*Dispatcher, error) {
	cfg = cfg.withDefaults()
	client, err := cfg.Endpoints.Client(cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	return &Dispatcher{cfg: cfg, js: js, svcs: svcs, client: client}, nil
}

// Check checks a webhook URL against the dispatcher's SSRF rules, as
// `natter service webhook` does before it stores one.
func (d *Dispatcher) Check(ctx context.Context, url string) error {
	return d.cfg.Endpoints.Check(ctx, url)
}

// Run delivers until ctx ends: one worker per service with a webhook,
// started, restarted (the webhook changed) and stopped as the registry
// changes. It returns once every worker has.
func (d *Dispatcher) Run(ctx context.Context) error {
	type running struct {
		hook   services.Webhook
		cancel context.CancelFunc
	}
	workers := map[string]running{}
	var wg sync.WaitGroup
	defer func() {
		for _, r := range workers {
			r.cancel()
		}
		wg.Wait()
	}()
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	for {
		want := map[string]services.Webhook{}
		for _, s := range d.svcs.Services() {
			if s.Webhook != nil {
				want[s.Name] = *s.Webhook
			}
		}
		for name, r := range workers {
			if h, ok := want[name]; !ok || h != r.hook {
				r.cancel()
				delete(workers, name)
			}
		}
		for name, h := range want {
			if _, ok := workers[name]; ok {
				continue
			}
			wctx, cancel := context.WithCancel(ctx)
			workers[name] = running{hook: h, cancel: cancel}
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.work(wctx, name, h)
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// work delivers service name's events one at a time, in order, until ctx
// ends. Its consumer is made by the operator's processes when the service
// is added (schema.EnsureServiceConsumers): until it exists, it waits.
func (d *Dispatcher) work(ctx context.Context, name string, hook services.Webhook) {
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		if cons == nil {
			c, err := d.js.Consumer(ctx, schema.StreamServiceEvents, schema.ServiceEventsConsumerName(name))
			if err != nil {
				if ctx.Err() == nil {
					d.cfg.Logger.Debug("Webhook dispatcher waits for the service's consumer.", "service", name, "err", err)
				}
				sleep(ctx, d.cfg.Poll)
				continue
			}
			cons = c
		}
		batch, err := cons.Fetch(8, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			cons = nil
			sleep(ctx, d.cfg.Poll)
			continue
		}
		for msg := range batch.Messages() {
			if ctx.Err() != nil {
				_ = msg.Nak() // the next worker takes it at once
				continue
			}
			d.deliver(ctx, name, hook, msg)
		}
	}
}

// deliver POSTs one event until it succeeds, fails for good or the
// attempts run out; then it acks it, having moved a failure to the DLQ.
// Between attempts it tells the server it is still working on it, so the
// event is not redelivered meanwhile.
func (d *Dispatcher) deliver(ctx context.Context, name string, hook services.Webhook, msg jetstream.Msg) {
	for attempt := 1; ; attempt++ {
		err := d.post(ctx, hook, msg)
		if err == nil {
			_ = msg.Ack()
			return
		}
		if ctx.Err() != nil {
			_ = msg.Nak()
			return
		}
		if errors.Is(err, errPermanent) || attempt >= d.cfg.Retry.MaxAttempts {
			reason := fmt.Sprintf("after %d attempts: %v", attempt, err)
			if err := d.dead(ctx, name, msg, reason); err != nil {
				d.cfg.Logger.Warn("Webhook dispatcher could not dead-letter an event.", "service", name, "err", err)
				_ = msg.Nak()
				return
			}
			d.cfg.Logger.Info("Webhook event dead-lettered.", "service", name, "reason", reason)
			_ = msg.Ack()
			return
		}
		_ = msg.InProgress()
		if !sleep(ctx, d.cfg.Retry.Backoff(attempt)) {
			_ = msg.Nak()
			return
		}
	}
}

// post makes one attempt.
func (d *Dispatcher) post(ctx context.Context, hook services.Webhook, msg jetstream.Msg) error {
	if err := d.cfg.Endpoints.Check(ctx, hook.URL); err != nil {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	body := msg.Data()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Natter-Webhook/1")
	req.Header.Set(HeaderSignature, Sign(hook.Secret, d.cfg.Now(), body))
	if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
		req.Header.Set(HeaderEventID, id)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		if errors.Is(err, webpush.ErrEndpointRefused) {
			return fmt.Errorf("%w: %w", errPermanent, err)
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return fmt.Errorf("webhook: HTTP %d", c)
	default:
		return fmt.Errorf("%w: HTTP %d", errPermanent, c)
	}
}

// dead copies an event to SVC_WEBHOOK_DLQ with the reason; its id keeps a
// retried copy from being stored twice.
func (d *Dispatcher) dead(ctx context.Context, name string, msg jetstream.Msg, reason string) error {
	m := &nats.Msg{Subject: schema.WebhookDead(name), Data: msg.Data(), Header: nats.Header{}}
	m.Header.Set(schema.HeaderReason, reason)
	m.Header.Set(schema.HeaderSubject, msg.Subject())
	id := msg.Headers().Get(jetstream.MsgIDHeader)
	if meta, err := msg.Metadata(); err == nil {
		m.Header.Set(schema.HeaderSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
		if id == "" {
			id = strconv.FormatUint(meta.Sequence.Stream, 10)
		}
	}
	_, err := d.js.PublishMsg(ctx, m, jetstream.WithMsgID(id))
	return err
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
