package main

import (
	"errors"
	"flag"
	"strings"

	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
)

// regionFlags are natter nats's flags for a supercluster: one NATS
// cluster per region joined by gateways, and where the schema lives
// (docs/scaling.md, Regions).
type regionFlags struct {
	region, gatewayListen, gatewayAdvertise *string
	gateways                                []natsrv.Gateway
	home, streamRegions                     *string
}

func addRegionFlags(fs *flag.FlagSet) *regionFlags {
	f := &regionFlags{
		region:           fs.String("region", "", "this node's region: tags it region:<name> for stream placement; with --gateway-listen it must equal --cluster-name"),
		gatewayListen:    fs.String("gateway-listen", "", "gateway listen address joining this cluster (a region) to the other regions' clusters (a supercluster); empty: no gateways"),
		gatewayAdvertise: fs.String("gateway-advertise", "", "host:port the other regions dial for this node's gateway, when not --gateway-listen"),
		home:             fs.String("home-region", "", "region of the buckets and every stream but the message streams (placement by the region:<name> tag); give every node the same"),
		streamRegions:    fs.String("stream-regions", "", "comma-separated home region of each message stream, CHAT_p in the (p mod len)th; default --home-region; give every node the same"),
	}
	fs.Func("gateway", "a region of the supercluster: name=nats://host:port,... (its nodes' gateway addresses); repeat for each region (this one's own may be given)", func(s string) error {
		g, err := natsrv.ParseGateway(s)
		if err == nil {
			f.gateways = append(f.gateways, g)
		}
		return err
	})
	return f
}

// apply puts the flags into cfg.
func (f *regionFlags) apply(cfg *natsConfig) error {
	cfg.server.Region = *f.region
	cfg.server.GatewayListen = *f.gatewayListen
	cfg.server.GatewayAdvertise = *f.gatewayAdvertise
	cfg.server.Gateways = f.gateways
	if cfg.server.GatewayListen != "" && cfg.server.ClusterName == "" {
		return errors.New("--gateway-listen needs --cluster-name (the region)")
	}
	r := schema.Regions{Home: *f.home}
	for _, s := range strings.Split(*f.streamRegions, ",") {
		if s = strings.TrimSpace(s); s != "" {
			r.Streams = append(r.Streams, s)
		}
	}
	if len(r.Streams) > 0 && r.Home == "" {
		return errors.New("--stream-regions needs --home-region")
	}
	cfg.node.Schema.Regions = r
	return nil
}
