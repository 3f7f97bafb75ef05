package gateway

import (
	"context"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// The interfaces below are what the gateway needs of the parts behind it,
// declared here where they are used; app adapts the concrete parts to
// them. Errors a client caused are the sentinels of errors.go, wrapped;
// any other error is answered as internal (or unavailable, for timeouts).

// Actor is who asks for a change: a user, over one gateway session. The
// session lets the fan-out spare that connection the push it already got
// as a reply.
type Actor struct {
	User    string
	Session string
}

// Conversation is one conversation document as the gateway reads it.
type Conversation interface {
	// Protocol renders it as clients see it, with the members inline when
	// there are at most membersInline; the seqs are left for the caller.
	Protocol(membersInline int) *protocol.Conversation
	// SortedMembers returns a sorted copy of the members.
	SortedMembers() []string
	// StateFor returns uid's consent state of it (protocol.ConvState*,
	// "" when normal).
	StateFor(uid string) string
	// Role returns uid's role (protocol.Role*), "" for a non-member.
	Role(uid string) string
	// MayPost reports whether uid, a member, may send (group.go).
	MayPost(uid string) bool
	// MessageTTL is the disappearing-messages setting in seconds, 0 when
	// off (ttl.go).
	MessageTTL() int64
}

// Conversations reads and changes conversations and their membership.
type Conversations interface {
	// IsMember reports whether uid is a member of conv; a conversation that
	// does not exist has no members.
	IsMember(ctx context.Context, conv, uid string) (bool, error)
	// Get returns conv if uid is a member, and ErrForbidden otherwise,
	// whether it exists or not.
	Get(ctx context.Context, conv, uid string) (Conversation, error)
	// UserConversations returns the ids of uid's conversations. It may
	// still name one uid just left; Get filters those out.
	UserConversations(ctx context.Context, uid string) ([]string, error)
	// Shares reports whether a and b are both members of some
	// conversation; aConvs is a's UserConversations, read once by callers
	// that ask about many users.
	Shares(ctx context.Context, a string, aConvs []string, b string) (bool, error)
	// CreateDirect returns the direct conversation of by.User and other,
	// creating it on first use.
	CreateDirect(ctx context.Context, by Actor, other string) (Conversation, error)
	// CreateGroup creates a group owned by by.User with the other members.
	CreateGroup(ctx context.Context, by Actor, title string, others []string) (Conversation, error)
	// RemoveMember removes user from the group conv.
	RemoveMember(ctx context.Context, by Actor, conv, user string) error
	// Leave removes by.User from the group conv.
	Leave(ctx context.Context, by Actor, conv string) error
}

// ReadMarkers keeps how far each member has read each conversation, and
// how far it was delivered to them (delivered.go). The caller checks
// membership and clamps seqs to the conversation's last.
type ReadMarkers interface {
	// ReadSeq returns uid's marker in conv, 0 before any read.
	ReadSeq(ctx context.Context, conv, uid string) (uint64, error)
	// MarkRead moves uid's marker in conv to seq when that is further on,
	// and reports whether it moved.
	MarkRead(ctx context.Context, conv, uid string, seq uint64) (bool, error)
	// MarkDelivered moves uid's delivered marker in conv to seq when that
	// is further on, and reports whether it moved.
	MarkDelivered(ctx context.Context, conv, uid string, seq uint64) (bool, error)
	// Receipts returns the delivered and read markers of users in conv,
	// in the order of users; delivered is never below read.
	Receipts(ctx context.Context, conv string, users []string) ([]protocol.Receipt, error)
}

// Messages reads the messages of conversations, in pages by seq.
type Messages interface {
	// After returns up to limit messages with seq > after, oldest first,
	// and whether more follow.
	After(ctx context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error)
	// Before returns the newest limit messages with seq < before (0: no
	// bound), oldest first, and whether older ones exist.
	Before(ctx context.Context, conv string, before uint64, limit int) ([]*protocol.Message, bool, error)
	// Last returns the seq of conv's last message, 0 when it has none.
	Last(ctx context.Context, conv string) (uint64, error)
	// Get returns the message of conv with seq, or ErrNotFound. The
	// gateway reads the target of an edit and the original of a duplicate
	// send with it.
	Get(ctx context.Context, conv string, seq uint64) (*protocol.Message, error)
	// ThreadAfter returns up to limit replies of the thread under root
	// with seq > after, oldest first, and whether more follow.
	ThreadAfter(ctx context.Context, conv string, root, after uint64, limit int) ([]*protocol.Message, bool, error)
	// ThreadBefore returns the newest limit replies of the thread under
	// root with seq < before (0: no bound), oldest first, and whether
	// older ones exist.
	ThreadBefore(ctx context.Context, conv string, root, before uint64, limit int) ([]*protocol.Message, bool, error)
	// CountAfter counts conv's plain messages (not edits, deletes or
	// reactions) with seq > after, saturating at limit.
	CountAfter(ctx context.Context, conv string, after uint64, limit int) (uint64, error)
}

// PresenceState is what is known of one user's presence.
type PresenceState struct {
	Online bool
	// Devices is how many connections the user has, when online.
	Devices int
	// LastSeen is when the user went offline; zero when never seen.
	LastSeen time.Time
}

// Presence records this gateway's connections and answers presence
// queries.
type Presence interface {
	// Connected records a new connection of uid.
	Connected(ctx context.Context, uid, session, device string) error
	// Disconnected removes a connection of uid.
	Disconnected(ctx context.Context, uid, session string) error
	// State returns uid's presence; a user never seen is offline.
	State(ctx context.Context, uid string) (PresenceState, error)
}

// Device is a device registered for push notifications, as its owner may
// see it: never the token.
type Device struct {
	// ID fingerprints the platform and token.
	ID       string
	Platform string
	Added    time.Time
}

// Devices keeps the devices users registered for push notifications and
// the conversations they muted. Platform and token are checked by the
// implementation, which knows the providers (ErrBadRequest).
type Devices interface {
	// Register adds a device of uid, or returns the one already registered
	// with the same platform and token.
	Register(ctx context.Context, uid, platform, token string) (Device, error)
	// Unregister removes uid's devices matching deviceID and token (an
	// empty one matches any); removing none is not an error.
	Unregister(ctx context.Context, uid, deviceID, token string) error
	// List returns uid's devices, oldest first.
	List(ctx context.Context, uid string) ([]Device, error)
	// Mute sets uid's mute level of conv (protocol.MuteAll, MuteMentions
	// or MuteNone) until then, zero for no end; MuteNone or a past time
	// unmutes.
	Mute(ctx context.Context, uid, conv, level string, until time.Time) error
	// MuteLevel returns uid's mute level of conv now (protocol.MuteNone
	// when not muted).
	MuteLevel(ctx context.Context, uid, conv string) (string, error)
}
