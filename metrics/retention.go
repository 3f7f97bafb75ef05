package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RetentionSample is what the CHAT stream's retention trimmer last saw,
// read at scrape time.
type RetentionSample struct {
	// HistoryLag is the age of the oldest message the history store lacks.
	HistoryLag time.Duration
	// Held is how many stream seqs older than the hot window the stream
	// keeps because the history store or the search index lacks them.
	Held uint64
	// Purged counts the seqs the trimmer removed since it started.
	Purged uint64
	// Errors counts the passes that failed.
	Errors uint64
	// LastSuccess is when a pass last succeeded; zero before the first.
	LastSuccess time.Time
}

// Retention reports a RetentionSample. The history lag is the alert that
// matters: while the store is down the stream keeps every message it
// lacks, so the stream grows by the message rate for as long as the lag
// does.
type Retention struct {
	read                                func() RetentionSample
	lag, held, purged, errors, lastPass *prometheus.Desc
}

var _ prometheus.Collector = (*Retention)(nil)

// NewRetention returns a collector of read(), usually a trimmer's Stats
// mapped to a RetentionSample.
func NewRetention(read func() RetentionSample) *Retention {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, nil, nil)
	}
	return &Retention{read: read,
		lag:      d("history_lag_seconds", "Age of the oldest message in CHAT that the history store does not have yet; 0 when it has everything."),
		held:     d("retention_held_messages", "Messages older than the hot window that CHAT keeps because the history store or the search index lacks them."),
		purged:   d("retention_purged_total", "Messages the retention trimmer removed from CHAT (the history store had them and they were older than the hot window)."),
		errors:   d("retention_errors_total", "Retention passes that failed (CHAT is not trimmed while they fail)."),
		lastPass: d("retention_last_success_timestamp_seconds", "When a retention pass last succeeded (Unix time); 0 before the first."),
	}
}

// Describe implements prometheus.Collector.
func (r *Retention) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.lag
	ch <- r.held
	ch <- r.purged
	ch <- r.errors
	ch <- r.lastPass
}

// Collect implements prometheus.Collector.
func (r *Retention) Collect(ch chan<- prometheus.Metric) {
	s := r.read()
	last := 0.0
	if !s.LastSuccess.IsZero() {
		last = float64(s.LastSuccess.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(r.lag, prometheus.GaugeValue, s.HistoryLag.Seconds())
	ch <- prometheus.MustNewConstMetric(r.held, prometheus.GaugeValue, float64(s.Held))
	ch <- prometheus.MustNewConstMetric(r.purged, prometheus.CounterValue, float64(s.Purged))
	ch <- prometheus.MustNewConstMetric(r.errors, prometheus.CounterValue, float64(s.Errors))
	ch <- prometheus.MustNewConstMetric(r.lastPass, prometheus.GaugeValue, last)
}
