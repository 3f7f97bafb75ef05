package protocol

// Last is the preview of a conversation's newest message or event in the
// user's conversation list (issue 15): enough to render the list without
// a history read.
type Last struct {
	Seq    uint64 `json:"seq"`
	Sender string `json:"sender"`
	TS     string `json:"ts"`
	// Kind is the item's kind: KindMessage ("", omitted) or KindEvent.
	Kind string `json:"kind,omitempty"`
	// Snippet is Snippet(body, kind): the body's text cut to
	// MaxSnippetRunes, or the kind for a body without text; empty when
	// Deleted.
	Snippet string `json:"snippet"`
	// Deleted says the message was deleted since.
	Deleted bool `json:"deleted,omitempty"`
	// ExpiresAt is when the previewed message disappears (ttl.go): a
	// client drops the preview then.
	ExpiresAt string `json:"expires_at,omitempty"`
}

// MaxMentionCount is where a conversation's mention count saturates: the
// server keeps the seqs of that many newest mentions of each member.
const MaxMentionCount = 32
