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
	// TypeExport asks for the user's archive: their conversations
	// (metadata, members), their own messages and their attachments' URLs.
	TypeExport = "export"
	// TypeExportReady answers it with a short-lived signed URL of the
	// archive (NDJSON).
	TypeExportReady = "export_ready"
	// EventAccountDeleted is the GroupEvent of a direct conversation
	// whose other member's account was erased (user: theirs): the
	// conversation stays, with that user in its "erased", and nobody may
	// send in it any more.
	EventAccountDeleted = "account_deleted"
)

// ExportReady answers export: File is the archive (NDJSON) with a signed
// URL valid until File.Expires; the counts say what it holds.
type ExportReady struct {
	Type          string `json:"type"`
	ID            string `json:"id,omitempty"`
	File          File   `json:"file"`
	Conversations int    `json:"conversations"`
	Messages      int    `json:"messages"`
	Files         int    `json:"files"`
}

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
