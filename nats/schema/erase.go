package schema

// Erasure of a user (GDPR, issue 16; docs/operations.md "Erase and
// export"): the eraser role removes a user from every conversation,
// deletes their devices, presence, markers and attachments, and replaces
// every message they sent with a tombstone in the history store and the
// CHAT stream. It is the only role that may delete a message of CHAT
// ($JS.API.STREAM.MSG.DELETE.CHAT). Its service, chat.api.erase, runs in
// the process that holds the history store (natter serve, natter
// history); natter user erase and the gateway (a client's delete_account)
// request it.
const (
	// RoleEraser erases users: see above.
	RoleEraser = "eraser"
	// EraseService is the erase API's micro service name.
	EraseService = "erase"
	// EraseAPIGroup is the subject group of the erase API.
	EraseAPIGroup = "chat.api.erase"
	// EraseAPIWildcard matches one request to any erase endpoint: what a
	// gateway (and the operator) publishes to.
	EraseAPIWildcard = EraseAPIGroup + ".*"
	// EraseAPIAll matches every subject of the erase API: what the eraser
	// subscribes to.
	EraseAPIAll = EraseAPIGroup + ".>"
	// EraseEndpointRun erases a user and answers with the report once done.
	EraseEndpointRun = "run"
	// EraseEndpointStart records the erasure (the user can no longer log
	// in), answers at once and erases in the background: a client's
	// delete_account.
	EraseEndpointStart = "start"
	// EraseEndpointExport writes a user's export archive.
	EraseEndpointExport = "export"
	// EventErased, on chat.user.<uid>.account.erased, asks every gateway
	// to close all of uid's connections: the account was erased. Only the
	// eraser publishes it.
	EventErased = "account.erased"
)

// EraseAPI is the subject of the erase API's endpoint op.
func EraseAPI(op string) string { return EraseAPIGroup + "." + op }

// UserErased is the subject that closes an erased user's connections.
func UserErased(uid string) string { return User(uid, EventErased) }

// MsgDeleteAPI is the JetStream API subject that deletes one message of
// stream by seq (and overwrites it on disk).
func MsgDeleteAPI(stream string) string { return jsAPIPrefix + "STREAM.MSG.DELETE." + stream }

// ChatConsumers are the durable consumers on CHAT but the partitions'
// fan-out consumers (Layout.FanoutConsumers).
func ChatConsumers() []string {
	return []string{ConsumerFanout, ConsumerHistory, ConsumerPush, ConsumerServiceEvents, ConsumerSearch}
}
