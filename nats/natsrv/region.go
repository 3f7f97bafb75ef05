package natsrv

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// RegionTag is the server tag of a node in region r ("region:<r>"): what
// a stream's placement names to live in that region (schema.Config's
// HomeRegion and StreamRegions).
func RegionTag(r string) string { return "region:" + r }

// Gateway is one region of a supercluster as the other regions reach it:
// its cluster name and the nats://host:port URLs of its nodes' gateway
// listeners (any one is enough; the rest are found by gossip).
type Gateway struct {
	Name string
	URLs []string
}

// ParseGateway parses "name=nats://host:port,nats://host:port" (the URLs
// may also be bare host:port).
func ParseGateway(s string) (Gateway, error) {
	name, urls, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return Gateway{}, fmt.Errorf("%w: gateway %q is not like name=nats://host:port", ErrCluster, s)
	}
	g := Gateway{Name: name}
	for _, u := range strings.Split(urls, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		g.URLs = append(g.URLs, u)
	}
	if len(g.URLs) == 0 {
		return Gateway{}, fmt.Errorf("%w: gateway %q names no URL", ErrCluster, s)
	}
	return g, nil
}

// gatewayOptions adds the gateway listener and the other regions'
// gateways to opts (a supercluster: this node's cluster is its region)
// and the node's region tag. Gateways authenticate with the route
// credentials every node shares (the same credentials file in every
// region); URLs without userinfo get them.
func gatewayOptions(opts *server.Options, cfg Config, creds credentials) error {
	region := cfg.Region
	if region == "" && cfg.GatewayListen != "" {
		region = cfg.ClusterName // a supercluster's region is its cluster
	}
	if region != "" {
		opts.Tags = append(opts.Tags, RegionTag(region))
	}
	if cfg.GatewayListen == "" {
		if len(cfg.Gateways) > 0 || cfg.GatewayAdvertise != "" {
			return fmt.Errorf("%w: gateways need a gateway listen address", ErrCluster)
		}
		return nil
	}
	if cfg.ClusterName == "" {
		return fmt.Errorf("%w: a gateway needs a cluster name (the region's)", ErrCluster)
	}
	if cfg.Region != "" && cfg.Region != cfg.ClusterName {
		return fmt.Errorf("%w: region %q must be the cluster name %q: a supercluster's gateways are named by cluster", ErrCluster, cfg.Region, cfg.ClusterName)
	}
	host, port, err := splitListen(cfg.GatewayListen)
	if err != nil {
		return err
	}
	opts.Gateway = server.GatewayOpts{
		Name:           cfg.ClusterName,
		Host:           host,
		Port:           port,
		Username:       userRoute,
		Password:       creds.Route,
		Advertise:      cfg.GatewayAdvertise,
		ConnectRetries: -1,
	}
	var names []string
	for _, g := range cfg.Gateways {
		if slices.Contains(names, g.Name) {
			return fmt.Errorf("%w: gateway %q listed twice", ErrCluster, g.Name)
		}
		names = append(names, g.Name)
		rg := &server.RemoteGatewayOpts{Name: g.Name}
		for _, raw := range g.URLs {
			u, err := url.Parse(raw)
			if err != nil || u.Host == "" {
				return fmt.Errorf("%w: gateway URL %q is not like nats://host:port", ErrCluster, raw)
			}
			if u.User == nil {
				u.User = url.UserPassword(userRoute, creds.Route)
			}
			rg.URLs = append(rg.URLs, u)
		}
		opts.Gateway.Gateways = append(opts.Gateway.Gateways, rg)
	}
	return nil
}
