package protocol

// Account requests (issue 16, docs/protocol.md "Account: delete and
// export").
const (
	// TypeDeleteAccount erases the requesting user's account: it must name
	// the user itself, {"type":"delete_account","user":"<own id>"}, as a
	// confirmation.
	TypeDeleteAccount = "delete_account"
	// TypeAccountDeleted answers it; the server then closes every
	// connection of the user with CloseAccountErased.
	TypeAccountDeleted = "account_deleted"
)

// AccountDeleted answers delete_account: the erasure is recorded (the
// user can no longer log in) and runs on in the background.
type AccountDeleted struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	User string `json:"user"`
}

// CloseAccountErased ends every connection of an erased user, and any
// later login with their tokens.
var CloseAccountErased = Close{CloseUnauthorized, "account erased"}
