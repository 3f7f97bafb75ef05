package admin

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/natter-chat/natter/nats/schema"
)

// RepartitionReport is what `natter admin streams repartition M` did
// (schema.Repartition).
type RepartitionReport struct {
	From int `json:"from"`
	To   int `json:"to"`
	// Old and New are the message streams before and after.
	Old []string `json:"old"`
	New []string `json:"new"`
	// FirstSeq is the new streams' first seq: every seq of the old
	// streams is below it.
	FirstSeq uint64 `json:"first_seq"`
	// Skipped are the consumers nobody consumed, left undrained.
	Skipped []string `json:"skipped,omitempty"`
	// FenceSeconds is how long publishes had no stream.
	FenceSeconds float64 `json:"fence_seconds"`
	// Mappings is the CHAT account's subject mapping every NATS server
	// needs now (none for one stream).
	Mappings map[string]string `json:"mappings,omitempty"`
	// EarlyDeleted are streams an earlier move retired, deleted before
	// their de-dup window ended because a new stream takes their name.
	EarlyDeleted []string `json:"early_deleted,omitempty"`
	// Deleted are retired streams deleted, their de-dup window past (a
	// run with nothing to move).
	Deleted []string `json:"deleted,omitempty"`
	// Steps are the steps taken, in order.
	Steps []string `json:"steps"`
}

// Repartition moves the messages to `to` message streams, telling
// progress (each step) as it goes when progress is not nil.
func (a *Admin) Repartition(ctx context.Context, to int, progress func(string)) (*RepartitionReport, error) {
	r := &RepartitionReport{}
	res, err := schema.Repartition(ctx, a.js, to, schema.RepartitionOptions{Progress: func(s string) {
		r.Steps = append(r.Steps, s)
		if progress != nil {
			progress(s)
		}
	}})
	if err != nil {
		return nil, err
	}
	r.From, r.To, r.Old, r.New, r.FirstSeq, r.Skipped = res.From, res.To, res.Old, res.New, res.FirstSeq, res.Skipped
	r.FenceSeconds = res.Fence.Seconds()
	r.EarlyDeleted, r.Deleted = res.EarlyDeleted, res.Deleted
	r.Mappings = schema.Mappings(to)
	return r, nil
}

// WriteTable prints r.
func (r *RepartitionReport) WriteTable(w io.Writer) error {
	tw := newTable(w)
	row(tw, "streams", fmt.Sprintf("%d → %d", r.From, r.To))
	row(tw, "old", strings.Join(r.Old, ", "))
	row(tw, "new", strings.Join(r.New, ", "))
	row(tw, "first seq", r.FirstSeq)
	row(tw, "fence", age(r.FenceSeconds))
	row(tw, "retired streams deleted", strings.Join(r.Deleted, ", "))
	row(tw, "retired streams deleted early", strings.Join(r.EarlyDeleted, ", "))
	for _, s := range r.Skipped {
		row(tw, "not drained (nobody consumes it)", s)
	}
	if len(r.Mappings) == 0 {
		row(tw, "account mapping", fmt.Sprintf("none (remove the %s and %s mappings of an external NATS)", schema.MsgWildcard, schema.MemberWildcard))
	}
	for src, dst := range r.Mappings {
		row(tw, "account mapping", fmt.Sprintf("%q: %q", src, dst))
	}
	return tw.Flush()
}
