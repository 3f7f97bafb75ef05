package schema

// NATS headers Natter sets on messages.
const (
	// HeaderMsgID is JetStream's de-duplication header.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderOrigin names the gateway session that sent a message, so the
	// gateway can give that one connection the ack instead of the push.
	HeaderOrigin = "Natter-Origin"
)
