package schema

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Full-text search (issue 16, docs/operations.md "Search"): the indexer
// role reads CHAT in order through its own durable consumer and keeps a
// search index (package search); it serves chat.api.search.query, which
// gateways call for their clients after checking membership.
const (
	// ConsumerSearch is the indexer's durable consumer on CHAT; its ack
	// floor is the stream seq up to which the index has everything.
	ConsumerSearch = "search"
	// PriorityGroupSearch is its pinned priority group: one indexer at a
	// time, in stream order, so an edit finds its target indexed.
	PriorityGroupSearch = "search"
	// SearchBatch is the most messages the indexer holds unacknowledged:
	// its fetch size and the consumer's MaxAckPending.
	SearchBatch = 500
	// SearchService is the search API's micro service name.
	SearchService = "search"
	// SearchAPIGroup is the subject group of the search API.
	SearchAPIGroup = "chat.api.search"
	// SearchAPIWildcard matches one request to any search endpoint: what
	// a gateway publishes to.
	SearchAPIWildcard = SearchAPIGroup + ".*"
	// SearchAPIAll matches every subject of the search API: what an
	// indexer subscribes to.
	SearchAPIAll = SearchAPIGroup + ".>"
	// LeaseSearchIndexer is the lease (in BucketLeases) of the indexer of
	// an embedded search index: only one such indexer may consume the
	// search consumer, or each index would hold part of the messages.
	LeaseSearchIndexer = "search.indexer"
	// SearchEndpointQuery is the endpoint that answers a query.
	SearchEndpointQuery = "query"
)

// SearchAdminGroup is the subject group of the search API's endpoints
// that change the index: below SearchAPIGroup, so an indexer serves
// them, and out of SearchAPIWildcard's reach, so a gateway may not call
// them. SearchEndpointForget removes messages a conversation's retention
// dropped (the eraser role calls it, services/erase/retain.go).
const (
	SearchAdminGroup     = SearchAPIGroup + ".admin"
	SearchEndpointForget = "forget"
)

// SearchForget is the subject of the search API's forget endpoint.
func SearchForget() string { return SearchAdminGroup + "." + SearchEndpointForget }

// SearchAPI is the subject of the search API's endpoint op.
func SearchAPI(op string) string { return SearchAPIGroup + "." + op }

// SearchConsumer is the indexer's durable pull consumer of the stored
// messages (not membership events: membership is checked at query time).
// Each message is acked after the index committed it; MaxAckPending equals
// the batch, so after a crash the batch is redelivered before anything
// newer and the index sees every conversation in stream order.
func SearchConsumer() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        ConsumerSearch,
		Description:    "keeps the full-text search index (natter indexer)",
		FilterSubjects: []string{StoredMsgWildcard},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxAckPending:  SearchBatch,
		MaxWaiting:     16,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{PriorityGroupSearch},
		PinnedTTL:      5 * time.Second,
	}
}
