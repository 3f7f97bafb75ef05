package admin

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// The reports print as aligned tables for a terminal; `--json` prints
// the same values as JSON instead (the struct tags).

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// row writes one tab-separated line; empty cells show as "-".
func row(w io.Writer, cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = fmt.Sprint(c)
		if s[i] == "" {
			s[i] = "-"
		}
	}
	fmt.Fprintln(w, strings.Join(s, "\t"))
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func age(seconds float64) string {
	if seconds <= 0 {
		return "0s"
	}
	return time.Duration(seconds * float64(time.Second)).Round(time.Second).String()
}

// WriteTable prints r as tables.
func (r *UserReport) WriteTable(w io.Writer) error {
	tw := newTable(w)
	state := "offline"
	if r.Presence.Online {
		state = fmt.Sprintf("online (%d devices)", r.Presence.Devices)
	}
	row(tw, "user", r.User)
	row(tw, "presence", state)
	row(tw, "last seen", stamp(r.Presence.LastSeen))
	row(tw, "add policy", r.AddPolicy)
	row(tw, "blocked", strings.Join(r.Blocked, ", "))
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "CONNECTIONS (%d)\n", len(r.Connections))
	row(tw, "GATEWAY", "SESSION", "DEVICE", "SINCE")
	for _, c := range r.Connections {
		row(tw, c.Gateway, c.Session, c.Device, stamp(c.Since))
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "CONVERSATIONS (%d)\n", len(r.Conversations))
	row(tw, "CONV", "KIND", "ROLE", "READ SEQ", "TITLE")
	for _, c := range r.Conversations {
		row(tw, c.Conv, c.Kind, c.Role, c.ReadSeq, c.Title)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "PUSH DEVICES (%d)\n", len(r.Devices))
	row(tw, "PLATFORM", "FINGERPRINT", "ADDED")
	for _, d := range r.Devices {
		row(tw, d.Platform, d.Fingerprint, stamp(d.Added))
	}
	return tw.Flush()
}

// WriteTable prints r as tables.
func (r *ConvReport) WriteTable(w io.Writer) error {
	tw := newTable(w)
	row(tw, "conv", r.Conv)
	row(tw, "kind", r.Kind)
	row(tw, "title", r.Title)
	row(tw, "owner", r.Owner)
	row(tw, "created", stamp(r.Created))
	row(tw, "last seq", fmt.Sprintf("%d (from %s)", r.LastSeq, r.LastSeqFrom))
	part := "unpartitioned"
	if r.Partition >= 0 {
		part = fmt.Sprint(r.Partition)
	}
	row(tw, "partition", fmt.Sprintf("%s (consumer %s)", part, r.FanoutConsumer))
	row(tw, "stream", r.Stream)
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "MEMBERS (%d)\n", len(r.Members))
	row(tw, "USER", "ROLE", "READ SEQ", "UNREAD")
	for _, m := range r.Members {
		row(tw, m.User, m.Role, m.ReadSeq, r.LastSeq-min(m.ReadSeq, r.LastSeq))
	}
	return tw.Flush()
}

// WriteTable prints r as one line.
func (r *Change) WriteTable(w io.Writer) error {
	var err error
	switch {
	case !r.Changed:
		_, err = fmt.Fprintf(w, "%s is already a member of %s: nothing changed\n", r.User, r.Conv)
	case r.Action == "added":
		_, err = fmt.Fprintf(w, "added %s to %s\n", r.User, r.Conv)
	default:
		_, err = fmt.Fprintf(w, "removed %s from %s\n", r.User, r.Conv)
	}
	return err
}

// WriteTable prints r as a line and the connections still open.
func (r *KickReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "closed %d of the %d connections of %s listed before the kick\n", r.Closed, r.Before, r.User)
	if len(r.Open) == 0 {
		return nil
	}
	tw := newTable(w)
	fmt.Fprintf(tw, "STILL OPEN (%d): reconnected, or their gateway is unreachable\n", len(r.Open))
	row(tw, "GATEWAY", "SESSION", "DEVICE", "SINCE")
	for _, c := range r.Open {
		row(tw, c.Gateway, c.Session, c.Device, stamp(c.Since))
	}
	return tw.Flush()
}

// WriteTable prints r as a header line and one row per consumer.
func (r *LagReport) WriteTable(w io.Writer) error {
	window := "none recorded"
	if r.HotWindowSeconds > 0 {
		window = age(r.HotWindowSeconds)
	}
	fmt.Fprintf(w, "stream %s: seq %d..%d, %d messages, %d bytes, %d partitions, hot window %s\n",
		r.Stream, r.FirstSeq, r.LastSeq, r.Messages, r.Bytes, r.Partitions, window)
	tw := newTable(w)
	row(tw, "CONSUMER", "PENDING", "ACK PENDING", "REDELIVERED", "WAITING", "LAST DELIVERED", "ACK FLOOR", "LAG", "OF WINDOW", "STATE")
	for _, c := range r.Consumers {
		row(tw, c.Name, c.Pending, c.AckPending, c.Redelivered, c.Waiting, c.LastDelivered, c.AckFloor,
			age(c.LagSeconds), fmt.Sprintf("%.1f%%", 100*c.OfHotWindow), c.State)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, o := range r.Streams {
		if err := o.WriteTable(w); err != nil {
			return err
		}
	}
	return nil
}
