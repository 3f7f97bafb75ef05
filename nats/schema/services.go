package schema

import (
	"regexp"

	"github.com/nats-io/nats.go/jetstream"
)

// Service identities (issue 17): every internal service has a NATS user of
// its own, ServiceUser(name), whose permissions (ServicePermissions) allow
// requests to its own prefix of the chat service API and nothing else. The
// registry bucket BucketServices says which senders (user ids) each
// service may post as; the chat service checks it before anything is
// stored or delivered.
const (
	// BucketServices is the service registry: key = service name, value =
	// the JSON record of package services (name, senders, created, ...).
	BucketServices = "SERVICES"
	// ChatService is the NATS micro service internal services call: `nats
	// micro ls` lists it.
	ChatService = "chat"
	// ServiceAPIGroup is the subject group of the chat service API:
	// chat.api.svc.<service>.<endpoint>.
	ServiceAPIGroup = "chat.api.svc"
	// ServiceAPIAll matches a request of any service to any endpoint: what
	// the chat service subscribes to (one group per endpoint).
	ServiceAPIAll = ServiceAPIGroup + ".*.*"
	// serviceUserPrefix prefixes a service's NATS user name.
	serviceUserPrefix = "svc-"
)

// serviceName is the shape of a service name: a subject token, a NATS
// user name and a KV key all at once.
var serviceName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// ValidServiceName reports whether name is a valid service name,
// [a-z][a-z0-9-]{0,31}.
func ValidServiceName(name string) bool { return serviceName.MatchString(name) }

// ServiceUser is the NATS user of service name ("svc-<name>").
func ServiceUser(name string) string { return serviceUserPrefix + name }

// ServiceInbox is the reply-subject prefix of service name's connections
// (nats.CustomInboxPrefix): it may subscribe to its own replies only.
func ServiceInbox(name string) string { return Inbox(ServiceUser(name)) }

// ServiceAPIPrefix matches every endpoint of service name's own API
// prefix, chat.api.svc.<name>.>: the only API subjects it may request.
func ServiceAPIPrefix(name string) string { return ServiceAPIGroup + "." + name + ".>" }

// ServiceAPI is the subject of endpoint (ServiceEndpoints) as called by
// service name.
func ServiceAPI(name, endpoint string) string { return ServiceAPIGroup + "." + name + "." + endpoint }

// ServiceFromSubject returns the service token of a
// chat.api.svc.<name>.<endpoint> subject, "" when subject is not one or
// the token is not a valid service name.
func ServiceFromSubject(subject string) string {
	p := ServiceAPIGroup + "."
	if !hasPrefix(subject, p) {
		return ""
	}
	rest := subject[len(p):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '.' {
			if ValidServiceName(rest[:i]) {
				return rest[:i]
			}
			return ""
		}
	}
	return ""
}

// Endpoints of the chat service API (docs/services.md).
const (
	EndpointCreate        = "create"
	EndpointAddMember     = "add_member"
	EndpointRemoveMember  = "remove_member"
	EndpointPost          = "post"
	EndpointHistory       = "history"
	EndpointSync          = "sync"
	EndpointConversations = "conversations"
)

// ServiceEndpoints lists the chat service API's endpoints.
var ServiceEndpoints = []string{EndpointCreate, EndpointAddMember, EndpointRemoveMember, EndpointPost,
	EndpointHistory, EndpointSync, EndpointConversations}

// ServicesBucket is the SERVICES KV bucket's configuration: History 1, a
// record is small (a name and a list of sender ids).
func ServicesBucket(c Config) jetstream.KeyValueConfig {
	c = c.withDefaults()
	return jetstream.KeyValueConfig{
		Bucket:       BucketServices,
		Description:  "Natter service registry: <service name> -> senders it may post as",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: 256 << 10,
	}
}

// ServicePermissions is what service name's NATS user may do, nothing
// else: request its own API prefix (chat.api.svc.<name>.>, so the service
// name the chat service reads from the subject cannot be forged) and
// receive replies on its own inbox. It may not publish to chat.msg.* or
// any other service's prefix, read KV buckets or streams, or answer
// requests.
func ServicePermissions(name string) Permissions {
	p := Permissions{
		Publish:   []string{ServiceAPIPrefix(name)},
		Subscribe: []string{ServiceInbox(name) + ".>"},
	}
	// EVENTS CONSUMER (issue 17 "Events for bots"): the durable consumer
	// svc-<name> of the events stream goes here, and only here. Append its
	// JetStream API subjects (CONSUMER.INFO and CONSUMER.MSG.NEXT of that
	// one consumer on that one stream) to p.Publish with jsAPIPrefix, its
	// acks with AckWildcard(stream, ServiceUser(name)), and nothing that
	// names another consumer or a wildcard over consumers.
	p.Publish = append(p.Publish, serviceEvents(name)...)
	return p
}

// serviceEvents returns the subjects service name publishes to consume its
// events: the info of its one consumer on SVC_EVENTS, pulls from it and
// acks of it. It names no other consumer and no stream API: it cannot
// read another service's events, CHAT or anything else.
func serviceEvents(name string) []string {
	c := ServiceEventsConsumerName(name)
	return []string{
		jsAPIPrefix + "CONSUMER.INFO." + StreamServiceEvents + "." + c,
		jsAPIPrefix + "CONSUMER.MSG.NEXT." + StreamServiceEvents + "." + c,
		AckWildcard(StreamServiceEvents, c),
	}
}

// ServiceAPIEndpoint is the subject the chat service serves endpoint on,
// for every service: chat.api.svc.*.<endpoint>.
func ServiceAPIEndpoint(endpoint string) string { return ServiceAPIGroup + ".*." + endpoint }
