package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Codes counts events by a small numeric code (WebSocket close codes).
// Every code it is built with is exported at 0 from the start, so a
// rule or a panel naming one finds a series before the first event; any
// other code is counted under "other". Counting is a map read and an
// atomic add: no label formatting per event.
type Codes struct {
	known map[uint16]prometheus.Counter
	other prometheus.Counter
}

// NewCodes registers a counter vector name{label} on reg with one child
// per code and one for "other".
func NewCodes(reg prometheus.Registerer, subsystem, name, help, label string, codes ...uint16) *Codes {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: subsystem, Name: name, Help: help}, []string{label})
	reg.MustRegister(vec)
	c := &Codes{known: make(map[uint16]prometheus.Counter, len(codes)), other: vec.WithLabelValues("other")}
	for _, code := range codes {
		c.known[code] = vec.WithLabelValues(strconv.Itoa(int(code)))
	}
	return c
}

// Inc counts one event of code.
func (c *Codes) Inc(code uint16) {
	if k, ok := c.known[code]; ok {
		k.Inc()
		return
	}
	c.other.Inc()
}

// Reasons counts events by a reason out of a fixed set, exported at 0
// from the start; a reason outside the set is counted under "other".
type Reasons struct {
	known map[string]prometheus.Counter
	other prometheus.Counter
}

// NewReasons registers a counter vector name{label} on reg with one
// child per reason and one for "other".
func NewReasons(reg prometheus.Registerer, subsystem, name, help, label string, reasons ...string) *Reasons {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: subsystem, Name: name, Help: help}, []string{label})
	reg.MustRegister(vec)
	r := &Reasons{known: make(map[string]prometheus.Counter, len(reasons)), other: vec.WithLabelValues("other")}
	for _, reason := range reasons {
		r.known[reason] = vec.WithLabelValues(reason)
	}
	return r
}

// Inc counts one event for reason.
func (r *Reasons) Inc(reason string) {
	if k, ok := r.known[reason]; ok {
		k.Inc()
		return
	}
	r.other.Inc()
}
