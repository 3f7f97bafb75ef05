package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StoreOps are the history store operations timed by Store.
var StoreOps = []string{"append", "after", "before", "last", "count", "expire", "erase", "drop"}

// Store times the history store's operations and counts their errors,
// per operation: what the store latency panel and the store error alert
// read. One child per operation is created up front.
type Store struct {
	seconds map[string]prometheus.Observer
	errors  map[string]prometheus.Counter
}

// NewStore registers natter_history_store_seconds{op} and
// natter_history_store_errors_total{op} on reg.
func NewStore(reg prometheus.Registerer) *Store {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "history",
		Name: "store_seconds", Help: "History store operations by kind: append is one batch of the writer, expire one expiry sweep of the embedded store, the others one read.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"op"})
	e := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "history",
		Name: "store_errors_total", Help: "History store operations that failed (the writer retries appends; a failed read is an error to a client)."}, []string{"op"})
	reg.MustRegister(h, e)
	s := &Store{seconds: map[string]prometheus.Observer{}, errors: map[string]prometheus.Counter{}}
	for _, op := range StoreOps {
		s.seconds[op] = h.WithLabelValues(op)
		s.errors[op] = e.WithLabelValues(op)
	}
	return s
}

// Done records one operation op that started at start and ended with err.
// A context that ended is not the store's error and is not counted.
func (s *Store) Done(op string, start time.Time, err error, canceled bool) {
	if o, ok := s.seconds[op]; ok {
		o.Observe(time.Since(start).Seconds())
	}
	if err != nil && !canceled {
		if c, ok := s.errors[op]; ok {
			c.Inc()
		}
	}
}
