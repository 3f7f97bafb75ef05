package schema

import (
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Regions places the schema in a supercluster (docs/scaling.md, Regions):
// every region is one NATS cluster whose nodes carry the server tag
// "region:<name>" (natsrv.RegionTag), joined to the others by NATS
// gateways.
type Regions struct {
	// Home is the region of everything but the message streams: the
	// CONVERSATIONS, PRESENCE and other buckets, DEAD and the service
	// streams. Empty: no placement (JetStream's choice, the cluster of
	// the server that creates them).
	Home string
	// Streams is the home region of each message stream, partition p's
	// Streams[p mod len(Streams)]: a conversation lives in the region of
	// its partition stream. Empty: Home.
	Streams []string
}

// RegionTagPrefix prefixes a region's name in a server tag.
const RegionTagPrefix = "region:"

// set reports whether r places anything.
func (r Regions) set() bool { return r.Home != "" || len(r.Streams) > 0 }

// RegionOf is the home region of message stream p of l ("" when
// unplaced).
func (r Regions) RegionOf(p int) string {
	if len(r.Streams) == 0 {
		return r.Home
	}
	return r.Streams[p%len(r.Streams)]
}

// placement is where stream (a stream of the schema, or a bucket's
// stream KV_<bucket>) lives: nil without regions.
func (c Config) placement(stream string) *jetstream.Placement {
	r := c.Regions
	if !r.set() {
		return nil
	}
	region := r.Home
	for p, s := range c.layout.ChatStreams() {
		if s == stream {
			region = r.RegionOf(p)
		}
	}
	if region == "" {
		return nil
	}
	return &jetstream.Placement{Tags: []string{RegionTagPrefix + region}}
}

// StreamRegion is the region a message stream's configuration places
// it in ("" when it has no region placement).
func StreamRegion(cfg jetstream.StreamConfig) string {
	if cfg.Placement == nil {
		return ""
	}
	for _, t := range cfg.Placement.Tags {
		if len(t) > len(RegionTagPrefix) && t[:len(RegionTagPrefix)] == RegionTagPrefix {
			return t[len(RegionTagPrefix):]
		}
	}
	return ""
}

// check refuses message streams placed in a region without a
// home region for the rest (the streams would then depend on a bucket
// placed anywhere).
func (r Regions) check() error {
	if len(r.Streams) > 0 && r.Home == "" {
		return fmt.Errorf("schema: message stream regions %v need a home region for the buckets", r.Streams)
	}
	return nil
}
