package protocol

// Block lists and add limits (docs/protocol.md, "Blocking" and "Add
// limits").
const (
	// TypeBlock blocks user: they can no longer open a direct
	// conversation with the blocker or add the blocker to a group, see the
	// blocker's presence, typing or read state, and the blocker gets no
	// live pushes of their messages.
	TypeBlock = "block"
	// TypeUnblock lifts a block.
	TypeUnblock = "unblock"
	// TypeBlocked lists the users the asker blocked, and names the reply.
	TypeBlocked = "blocked"
	// MaxBlocked bounds one user's block list.
	MaxBlocked = 1000
	// MaxUsersPerRequest bounds the users one create or add_member names.
	MaxUsersPerRequest = 1000
	// MaxNoticeMembers is the largest conversation whose members get
	// typing and read pushes of each other, as with presence.
	MaxNoticeMembers = 100
)

// BlockedFrame answers blocked, and block or unblock that carried an id:
// the asker's block list after the change, sorted.
type BlockedFrame struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	// Push marks the push to the user's other connections (see
	// ConversationFrame.Push).
	Push  bool     `json:"push,omitempty"`
	Users []string `json:"users"`
}
