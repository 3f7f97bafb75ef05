package main

import (
	"io"
	"slices"
	"testing"
)

func TestNATSRegionFlags(t *testing.T) {
	cfg, err := natsFlags([]string{"--name", "e1", "--cluster-name", "east", "--routes", "nats-route://a:6222",
		"--gateway-listen", "0.0.0.0:7222", "--gateway-advertise", "e1.example:7222",
		"--gateway", "east=nats://e1:7222,e2:7222", "--gateway", "west=nats://w1:7222",
		"--home-region", "east", "--stream-regions", "east, west"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.server
	if s.GatewayListen != "0.0.0.0:7222" || s.GatewayAdvertise != "e1.example:7222" || len(s.Gateways) != 2 ||
		s.Gateways[1].Name != "west" || !slices.Equal(s.Gateways[0].URLs, []string{"nats://e1:7222", "nats://e2:7222"}) {
		t.Errorf("server config %+v", s)
	}
	if r := cfg.node.Schema.Regions; r.Home != "east" || !slices.Equal(r.Streams, []string{"east", "west"}) || r.RegionOf(3) != "west" {
		t.Errorf("schema regions %+v", r)
	}
	for _, bad := range [][]string{
		{"--gateway-listen", "127.0.0.1:7222"},                       // no cluster
		{"--stream-regions", "east,west"},                            // no home region
		{"--name", "e1", "--cluster-name", "east", "--gateway", "x"}, // not name=URLs
	} {
		if _, err := natsFlags(bad, io.Discard); err == nil {
			t.Errorf("natsFlags(%v) accepted", bad)
		}
	}
}
