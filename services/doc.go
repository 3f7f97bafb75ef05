// Package services is the registry of service identities: which internal
// services exist and which senders (user ids) each may post as. It is kept
// in the SERVICES KV bucket (schema.BucketServices), one JSON record per
// service keyed by its name, so every node of a cluster sees the same
// registry. Registry reads and writes it; Index is an in-memory copy kept
// current by a KV watch, for hot paths (the chat service's post check) and
// for the NATS nodes that turn records into users.
package services
