package services

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// MaxSenders bounds the senders of one service.
const MaxSenders = 1000

// Service is one registry record, the JSON value of key Name in
// schema.BucketServices.
type Service struct {
	// Name is the service's name (schema.ValidServiceName); its NATS user
	// is schema.ServiceUser(Name).
	Name string `json:"name"`
	// Senders are the user ids the service may post as, sorted.
	Senders []string `json:"senders"`
	// Created is when the service was added; Updated when its record last
	// changed (senders or credentials).
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// PasswordHash is the bcrypt hash of its NATS user's password: the
	// NATS nodes install it as the user's password (a bcrypt password in
	// NATS), so the clear password lives only in the service's
	// credentials file.
	PasswordHash string `json:"password_hash"`
	// Webhook, when set, is where the service receives its events by
	// HTTP POST (services/webhook) instead of pulling its consumer.
	Webhook *Webhook `json:"webhook,omitempty"`
}

// Webhook is a service's webhook: the https URL its events are POSTed to
// and the secret they are signed with (HMAC-SHA256, docs/bots.md).
type Webhook struct {
	URL    string `json:"url"`
	Secret string `json:"secret"`
}

// MinWebhookSecret is the shortest webhook secret accepted.
const MinWebhookSecret = 16

// Validate checks what can be checked without the network: an https URL
// with a host and no user info, and a secret of MinWebhookSecret bytes or
// more. The SSRF rules (public addresses only) are the webhook
// dispatcher's, at registration (natter service webhook) and at every
// connection.
func (w *Webhook) Validate() error {
	u, err := url.Parse(w.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return fmt.Errorf("%w: webhook URL %q (want https://host/...)", ErrInvalid, w.URL)
	}
	if len(w.Secret) < MinWebhookSecret {
		return fmt.Errorf("%w: webhook secret of %d bytes, at least %d", ErrInvalid, len(w.Secret), MinWebhookSecret)
	}
	return nil
}

// Allowed reports whether s may post as sender.
func (s *Service) Allowed(sender string) bool {
	_, ok := slices.BinarySearch(s.Senders, sender)
	return ok
}

// Validate checks the name and senders and sorts and de-duplicates the
// senders.
func (s *Service) Validate() error {
	if !schema.ValidServiceName(s.Name) {
		return fmt.Errorf("%w: service name %q (want [a-z][a-z0-9-]{0,31})", ErrInvalid, s.Name)
	}
	if len(s.Senders) > MaxSenders {
		return fmt.Errorf("%w: %d senders, at most %d", ErrInvalid, len(s.Senders), MaxSenders)
	}
	for _, u := range s.Senders {
		if !protocol.ValidID(u) {
			return fmt.Errorf("%w: sender id %q", ErrInvalid, u)
		}
	}
	if s.Webhook != nil {
		if err := s.Webhook.Validate(); err != nil {
			return err
		}
	}
	slices.Sort(s.Senders)
	s.Senders = slices.Compact(s.Senders)
	return nil
}

// Registry reads and writes the SERVICES bucket. Writing is the
// operator's (natter service); roles only read it.
type Registry struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// Open returns the registry over the SERVICES bucket, which must exist
// (schema.Ensure creates it). now may be nil (time.Now).
func Open(ctx context.Context, js jetstream.JetStream, now func() time.Time) (*Registry, error) {
	kv, err := js.KeyValue(ctx, schema.BucketServices)
	if err != nil {
		return nil, fmt.Errorf("services: open bucket %s: %w", schema.BucketServices, err)
	}
	if now == nil {
		now = time.Now
	}
	return &Registry{kv: kv, now: now}, nil
}

// Get returns service name's record, or ErrNotFound.
func (r *Registry) Get(ctx context.Context, name string) (*Service, error) {
	if !schema.ValidServiceName(name) {
		return nil, fmt.Errorf("%w: service name %q", ErrInvalid, name)
	}
	e, err := r.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	} else if err != nil {
		return nil, fmt.Errorf("services: get %s: %w", name, err)
	}
	return decode(e.Value())
}

// List returns every registered service, by name.
func (r *Registry) List(ctx context.Context) ([]*Service, error) {
	lister, err := r.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("services: list: %w", err)
	}
	var out []*Service
	for k := range lister.Keys() {
		s, err := r.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		} else if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Put validates s and stores it, setting Created (for a new service) and
// Updated. A sender that another service already has is refused
// (ErrSenderTaken): a sender id belongs to one service.
func (r *Registry) Put(ctx context.Context, s *Service) error {
	if err := s.Validate(); err != nil {
		return err
	}
	all, err := r.List(ctx)
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.Name == s.Name {
			if s.Created.IsZero() {
				s.Created = o.Created
			}
			continue
		}
		for _, u := range s.Senders {
			if o.Allowed(u) {
				return fmt.Errorf("%w: %s is a sender of %s", ErrSenderTaken, u, o.Name)
			}
		}
	}
	now := r.now().UTC()
	if s.Created.IsZero() {
		s.Created = now
	}
	s.Updated = now
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("services: put %s: %w", s.Name, err)
	}
	if _, err := r.kv.Put(ctx, s.Name, data); err != nil {
		return fmt.Errorf("services: put %s: %w", s.Name, err)
	}
	return nil
}

// Delete removes service name, or returns ErrNotFound.
func (r *Registry) Delete(ctx context.Context, name string) error {
	if _, err := r.Get(ctx, name); err != nil {
		return err
	}
	if err := r.kv.Delete(ctx, name); err != nil {
		return fmt.Errorf("services: delete %s: %w", name, err)
	}
	return nil
}

func decode(data []byte) (*Service, error) {
	var s Service
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%w: record: %w", ErrInvalid, err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// HashPassword returns the bcrypt hash a record keeps of a service's
// password. The cost is bcrypt's minimum: the passwords are 190 random
// bits (natsrv.NewPassword), which no cost factor needs to stretch, and
// every NATS node checks the hash on each connect of the service.
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return "", fmt.Errorf("services: hash password: %w", err)
	}
	return string(h), nil
}
