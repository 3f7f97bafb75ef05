package natsrv

import (
	"net/url"
	"slices"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// The URL files' other nodes, as the shipped manifests' flags give them.
func TestPeerAddrs(t *testing.T) {
	routes := func(rs ...string) []*url.URL {
		var us []*url.URL
		for _, r := range rs {
			u, err := url.Parse(r)
			if err != nil {
				t.Fatal(err)
			}
			us = append(us, u)
		}
		return us
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		opts server.Options
		want []string
	}{
		{"compose", Config{ClusterName: "natter"},
			server.Options{ServerName: "nats1", Port: 4222, Routes: routes("nats-route://nats1:6222", "nats-route://nats2:6222", "nats-route://nats3:6222")},
			[]string{"nats2:4222", "nats3:4222"}},
		{"kubernetes", Config{ClusterName: "natter"},
			server.Options{ServerName: "natter-nats-1", Port: 4222, Routes: routes("nats-route://natter-nats-0.natter-nats:6222", "nats-route://natter-nats-1.natter-nats:6222", "nats-route://natter-nats-2.natter-nats:6222")},
			[]string{"natter-nats-0.natter-nats:4222", "natter-nats-2.natter-nats:4222"}},
		{"--servers wins", Config{ClusterName: "natter", Servers: []string{"10.0.0.1:4222", "10.0.0.2:4333", "10.0.0.2:4333", "127.0.0.1:4222"}},
			server.Options{ServerName: "n1", Port: 4222, Routes: routes("nats-route://n2:6222")},
			[]string{"10.0.0.1:4222", "10.0.0.2:4333"}},
		{"random port", Config{ClusterName: "natter"},
			server.Options{ServerName: "n1", Port: server.RANDOM_PORT, Routes: routes("nats-route://n2:6222")}, nil},
		{"no cluster", Config{Servers: []string{"n2:4222"}}, server.Options{Port: 4222}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := peerAddrs(tc.cfg, &tc.opts, "127.0.0.1:4222"); !slices.Equal(got, tc.want) {
				t.Errorf("peers %v, want %v", got, tc.want)
			}
		})
	}
}
