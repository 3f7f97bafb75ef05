package natsrv

import (
	"fmt"
	"net/url"

	"github.com/nats-io/nats-server/v2/server"
)

// clusterOptions adds the route listener, the routes and route
// authentication to opts when cfg names a cluster. Every node reads the
// same credentials file, so they share the route password; routes given
// without userinfo get it.
func clusterOptions(opts *server.Options, cfg Config, creds credentials) error {
	if cfg.ClusterName == "" {
		if cfg.ClusterListen != "" || len(cfg.Routes) > 0 {
			return fmt.Errorf("%w: routes and a cluster listener need a cluster name", ErrCluster)
		}
		return nil
	}
	if cfg.ServerName == "" || cfg.ServerName == DefaultServerName {
		return fmt.Errorf("%w: every node of cluster %q needs its own server name", ErrCluster, cfg.ClusterName)
	}
	if cfg.ClusterListen == "" {
		return fmt.Errorf("%w: cluster %q needs a route listen address", ErrCluster, cfg.ClusterName)
	}
	host, port, err := splitListen(cfg.ClusterListen)
	if err != nil {
		return err
	}
	opts.Cluster = server.ClusterOpts{
		Name:     cfg.ClusterName,
		Host:     host,
		Port:     port,
		Username: userRoute,
		Password: creds.Route,
	}
	for _, r := range cfg.Routes {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" {
			return fmt.Errorf("%w: route %q is not a URL like nats-route://host:port", ErrCluster, r)
		}
		if u.User == nil {
			u.User = url.UserPassword(userRoute, creds.Route)
		}
		opts.Routes = append(opts.Routes, u)
	}
	return nil
}
