package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Labeled counts events by one label out of a fixed set of values. Every
// value it is built with is exported at 0 from the start, so a rule or a
// panel naming one finds a series before the first event; any other value
// is counted under "other". Counting is a map read and an atomic add: no
// label formatting per event.
type Labeled[K comparable] struct {
	known map[K]prometheus.Counter
	other prometheus.Counter
}

func newLabeled[K comparable](reg prometheus.Registerer, subsystem, name, help, label string, text func(K) string, values []K) *Labeled[K] {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: subsystem, Name: name, Help: help}, []string{label})
	reg.MustRegister(vec)
	l := &Labeled[K]{known: make(map[K]prometheus.Counter, len(values)), other: vec.WithLabelValues("other")}
	for _, v := range values {
		l.known[v] = vec.WithLabelValues(text(v))
	}
	return l
}

// Inc counts one event with value v.
func (l *Labeled[K]) Inc(v K) {
	if k, ok := l.known[v]; ok {
		k.Inc()
		return
	}
	l.other.Inc()
}

// NewCodes registers a counter vector name{label} on reg by a small
// numeric code (WebSocket close codes), one child per code and "other".
func NewCodes(reg prometheus.Registerer, subsystem, name, help, label string, codes ...uint16) *Labeled[uint16] {
	return newLabeled(reg, subsystem, name, help, label, func(c uint16) string { return strconv.Itoa(int(c)) }, codes)
}

// NewReasons registers a counter vector name{label} on reg by a reason
// out of a fixed set, one child per reason and "other".
func NewReasons(reg prometheus.Registerer, subsystem, name, help, label string, reasons ...string) *Labeled[string] {
	return newLabeled(reg, subsystem, name, help, label, func(r string) string { return r }, reasons)
}
