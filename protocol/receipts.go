package protocol

// Delivery receipts (docs/protocol.md, "Delivery receipts").
const (
	// TypeDelivered is the cumulative delivered marker a client sends for a
	// conversation (every message up to seq reached one of the user's
	// devices), and names the push members get when it moved.
	TypeDelivered = "delivered"
	// TypeReceipts asks for every member's delivered and read markers of a
	// conversation, and names the reply.
	TypeReceipts = "receipts"
	// MaxReceiptsMembers is the largest conversation whose receipts are
	// pushed and answered: past it receipts answers too_large, as notices
	// stop past MaxNoticeMembers.
	MaxReceiptsMembers = MaxNoticeMembers
)

// Delivered is pushed to the other members when a member's delivered
// marker moved.
type Delivered struct {
	Type string `json:"type"`
	Conv string `json:"conv"`
	User string `json:"user"`
	Seq  uint64 `json:"seq"`
}

// Receipt is one member's markers in a conversation. Delivered is never
// below Read: a message read was delivered.
type Receipt struct {
	User      string `json:"user"`
	Delivered uint64 `json:"delivered"`
	Read      uint64 `json:"read"`
}

// ReceiptsFrame answers receipts: every member's markers, by user id.
type ReceiptsFrame struct {
	Type     string    `json:"type"`
	ID       string    `json:"id,omitempty"`
	Conv     string    `json:"conv"`
	Receipts []Receipt `json:"receipts"`
}
