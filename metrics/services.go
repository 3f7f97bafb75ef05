package metrics

import "github.com/prometheus/client_golang/prometheus"

// NewChatAPIRefused is natter_chatapi_refused_total: chat service API
// requests refused because the calling service may not act as the sender
// it named (docs/services.md). refused is read at scrape time.
func NewChatAPIRefused(refused func() uint64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "chatapi",
		Name: "refused_total", Help: "Chat API requests refused because the service may not act as the sender it named."},
		func() float64 { return float64(refused()) })
}
