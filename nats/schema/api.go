package schema

// The history request/reply API, chat.api.history.<op>, is a NATS micro
// service: internal services and gateways ask it for pages, and it does no
// membership checks (the gateway does them for clients).
const (
	// HistoryService is the micro service's name: `nats micro ls` lists it.
	HistoryService = "history"
	// HistoryAPIGroup is the subject group of the history API's endpoints.
	HistoryAPIGroup = "chat.api.history"
	// HistoryAPIWildcard matches one request to any history endpoint.
	HistoryAPIWildcard = HistoryAPIGroup + ".*"
	// HistoryAPIAll matches every subject of the history API: what a
	// history service subscribes to.
	HistoryAPIAll = HistoryAPIGroup + ".>"
)

// HistoryAPI is the subject of the history API's endpoint op ("after",
// "before", "last", "get", "count").
func HistoryAPI(op string) string { return HistoryAPIGroup + "." + op }
