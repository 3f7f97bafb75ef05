// Package events writes the events for services (bots): it reads the CHAT
// stream in order, one writer at a time (a pinned consumer), and for every
// message and membership change of a conversation in which a service's
// sender is a member stores one event addressed to that service in the
// SVC_EVENTS stream, where the service's own consumer reads it
// (nats/schema svcevents.go; the format is protocol.ServiceEvent,
// docs/bots.md).
package events
