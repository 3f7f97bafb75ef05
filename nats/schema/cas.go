package schema

import (
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// IsWrongLastSeq reports a failed compare-and-set: a KV Update or Create
// on a revision that is no longer the key's, or a publish whose expected
// last (subject) sequence does not hold. A one-node stream answers it
// with error code 10071; a replicated one (R3) answers concurrent writes
// of one subject with 10164 ("wrong last sequence", no seq), which
// nats.go maps to ErrKeyRevisionMismatch on a KV Update and to
// ErrKeyExists on a Create, but leaves as it is on a publish. Checking
// for 10071 alone treats the R3 answer as a failure, not a conflict to
// retry (on a 3-node cluster devices of one user marking read at once
// got "internal error").
func IsWrongLastSeq(err error) bool {
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
