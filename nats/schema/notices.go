package schema

// TypingNotice is what a gateway publishes on ConvTyping(conv); the
// fan-out checks the user against the members and pushes protocol.Typing.
// It travels between Natter's parts only, never to clients.
type TypingNotice struct {
	User string `json:"user"`
	// Except are the users User blocked: they get no push of it.
	Except []string `json:"except,omitempty"`
}

// ReadNotice is what a gateway publishes on ConvRead(conv) when a read
// marker moved; the fan-out tells every member.
type ReadNotice struct {
	User string `json:"user"`
	Seq  uint64 `json:"seq"`
	// Except are the users User blocked: they get no push of it.
	Except []string `json:"except,omitempty"`
}

// DeliveredNotice is what a gateway publishes on ConvDelivered(conv) when
// a delivered marker moved; the fan-out tells the other members.
type DeliveredNotice struct {
	User string `json:"user"`
	Seq  uint64 `json:"seq"`
	// Except are the users User blocked: they get no push of it.
	Except []string `json:"except,omitempty"`
}
