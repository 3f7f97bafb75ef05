package schema

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Events for bots (issue 17, docs/bots.md): the events role reads CHAT in
// order (ConsumerServiceEvents) and, for every message and membership
// event of a conversation one of a service's senders is a member of,
// stores one event addressed to that service in StreamServiceEvents, on
// ServiceEvent(service, conv). Each service has one durable consumer
// there, ServiceEventsConsumer, filtered on its own subjects: a service on
// NATS pulls it with its own user (ServicePermissions), and for a service
// with a webhook the events role's dispatcher pulls it and POSTs each
// event, moving what keeps failing to StreamWebhookDead.
const (
	// StreamServiceEvents holds the events addressed to services.
	StreamServiceEvents = "SVC_EVENTS"
	// StreamWebhookDead holds webhook deliveries that failed for good,
	// with the reason (HeaderReason).
	StreamWebhookDead = "SVC_WEBHOOK_DLQ"
	// ConsumerServiceEvents is the events role's durable consumer on CHAT.
	ConsumerServiceEvents = "svcevents"
	// PriorityGroupServiceEvents is its pinned priority group: one writer
	// at a time, in stream order, so membership changes take effect
	// between the messages they came between.
	PriorityGroupServiceEvents = "svcevents"

	svcEventPrefix    = "chat.svcev."
	webhookDeadPrefix = "chat.svcdead."
	// ServiceEventWildcard matches the events of every service: what the
	// events role publishes to.
	ServiceEventWildcard = svcEventPrefix + "*.*"
	// WebhookDeadWildcard matches the dead webhook deliveries of every
	// service.
	WebhookDeadWildcard = webhookDeadPrefix + "*"
)

// ServiceEvent is the subject of an event of conversation conv addressed
// to service name: chat.svcev.<service>.<conv>.
func ServiceEvent(name, conv string) string { return svcEventPrefix + name + "." + conv }

// ServiceEventFilter matches every event addressed to service name: its
// consumer's filter.
func ServiceEventFilter(name string) string { return svcEventPrefix + name + ".*" }

// WebhookDead is the subject of a dead webhook delivery of service name.
func WebhookDead(name string) string { return webhookDeadPrefix + name }

// ServiceEventsConsumerName is the durable consumer of service name on
// StreamServiceEvents: the same as its NATS user, "svc-<name>".
func ServiceEventsConsumerName(name string) string { return ServiceUser(name) }

// ServiceFromConsumer returns the service of a "svc-<name>" consumer, ""
// when consumer is not one.
func ServiceFromConsumer(consumer string) string {
	if !hasPrefix(consumer, serviceUserPrefix) || !ValidServiceName(consumer[len(serviceUserPrefix):]) {
		return ""
	}
	return consumer[len(serviceUserPrefix):]
}

// ServiceEventsStream is SVC_EVENTS's configuration: bounded by age and
// size, since a service that never reads must not fill the disk; a week
// like DEAD. Duplicates de-duplicates the events role's retries: an
// event's Nats-Msg-Id is derived from its CHAT seq and its service.
func ServiceEventsStream(c Config) jetstream.StreamConfig {
	c = c.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamServiceEvents,
		Description: "Natter events for services (bots): chat.svcev.<service>.<conv>",
		Subjects:    []string{ServiceEventWildcard},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      7 * 24 * time.Hour,
		MaxBytes:    1 << 30,
		MaxMsgs:     -1,
		MaxMsgSize:  c.MaxMsgSize + 4<<10,
		Discard:     jetstream.DiscardOld,
		Duplicates:  10 * time.Minute,
		Replicas:    c.Replicas,
	}
}

// WebhookDeadStream is SVC_WEBHOOK_DLQ's configuration: webhook
// deliveries that kept failing, kept for a week for operators (bounded in
// size).
func WebhookDeadStream(c Config) jetstream.StreamConfig {
	c = c.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamWebhookDead,
		Description: "Natter webhook deliveries that kept failing, with Natter-Reason",
		Subjects:    []string{WebhookDeadWildcard},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      7 * 24 * time.Hour,
		MaxBytes:    256 << 20,
		MaxMsgs:     -1,
		Discard:     jetstream.DiscardOld,
		Duplicates:  10 * time.Minute,
		Replicas:    c.Replicas,
	}
}

// ServiceEventsWriterConsumer is the events role's durable consumer on
// CHAT: messages and membership events, in order (pinned). It starts at
// new messages: there are no events of what was stored before it existed.
func ServiceEventsWriterConsumer() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        ConsumerServiceEvents,
		Description:    "events for services (bots), written to " + StreamServiceEvents,
		FilterSubjects: []string{StoredWildcard},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxAckPending:  1024,
		MaxWaiting:     64,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{PriorityGroupServiceEvents},
		PinnedTTL:      5 * time.Second,
	}
}

// ServiceEventsConsumer is service name's durable consumer on
// SVC_EVENTS, filtered on its own events. It starts at since, when the
// service was added: a service re-added under a name never reads what its
// predecessor left. AckWait is what a bot (or the webhook dispatcher, with
// its retries) has to handle one event before it comes again.
func ServiceEventsConsumer(name string, since time.Time) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ServiceEventsConsumerName(name),
		Description:   "events of service " + name,
		FilterSubject: ServiceEventFilter(name),
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &since,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       2 * time.Minute,
		MaxAckPending: 1000,
		MaxWaiting:    16,
		MaxDeliver:    -1,
	}
}

// EnsureServiceConsumers is the operator's step for the services
// registry: it creates the consumer of every service in since (name ->
// when it was added) that has none, and deletes the consumer of every
// service that is gone. An existing consumer is left as it is, so its
// position survives. It is idempotent; natter serve runs it on every
// registry change.
func EnsureServiceConsumers(ctx context.Context, js jetstream.JetStream, since map[string]time.Time) error {
	st, err := js.Stream(ctx, StreamServiceEvents)
	if err != nil {
		return fmt.Errorf("ensure service consumers: %w", err)
	}
	have := map[string]bool{}
	names := st.ConsumerNames(ctx)
	for c := range names.Name() {
		have[c] = true
	}
	if err := names.Err(); err != nil {
		return fmt.Errorf("ensure service consumers: list: %w", err)
	}
	for name, t := range since {
		if have[ServiceEventsConsumerName(name)] {
			continue
		}
		if _, err := st.CreateConsumer(ctx, ServiceEventsConsumer(name, t)); err != nil && !errors.Is(err, jetstream.ErrConsumerExists) {
			return fmt.Errorf("ensure consumer of service %s: %w", name, err)
		}
	}
	for c := range have {
		name := ServiceFromConsumer(c)
		if _, ok := since[name]; name == "" || ok {
			continue
		}
		if err := st.DeleteConsumer(ctx, c); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("delete consumer of removed service %s: %w", name, err)
		}
	}
	return nil
}
