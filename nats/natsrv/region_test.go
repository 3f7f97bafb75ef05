package natsrv_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/internal/testbin"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
)

func TestParseGateway(t *testing.T) {
	g, err := natsrv.ParseGateway("west=nats://10.0.0.1:7222, 10.0.0.2:7222")
	if err != nil || g.Name != "west" || !slices.Equal(g.URLs, []string{"nats://10.0.0.1:7222", "nats://10.0.0.2:7222"}) {
		t.Fatalf("ParseGateway: %+v, %v", g, err)
	}
	for _, bad := range []string{"west", "=nats://h:1", "west=", "west= , "} {
		if _, err := natsrv.ParseGateway(bad); !errors.Is(err, natsrv.ErrCluster) {
			t.Errorf("ParseGateway(%q): %v, want ErrCluster", bad, err)
		}
	}
}

func TestGatewayConfigRefused(t *testing.T) {
	dir := t.TempDir()
	for name, cfg := range map[string]natsrv.Config{
		"gateways without a listener": {Gateways: []natsrv.Gateway{{Name: "west", URLs: []string{"nats://127.0.0.1:1"}}}},
		"gateway without a cluster":   {GatewayListen: "127.0.0.1:0"},
		"region other than cluster": {ServerName: "e1", ClusterName: "east", ClusterListen: "127.0.0.1:0",
			GatewayListen: "127.0.0.1:0", Region: "west"},
		"bad gateway URL": {ServerName: "e1", ClusterName: "east", ClusterListen: "127.0.0.1:0",
			GatewayListen: "127.0.0.1:0", Gateways: []natsrv.Gateway{{Name: "west", URLs: []string{"nats://"}}}},
	} {
		cfg.Listen, cfg.DataDir = "127.0.0.1:0", filepath.Join(dir, name)
		if s, err := natsrv.Start(t.Context(), cfg); !errors.Is(err, natsrv.ErrCluster) {
			if s != nil {
				shutdown(t, s)
			}
			t.Errorf("%s: Start: %v, want ErrCluster", name, err)
		}
	}
}

// Two one-node regions joined by gateways: a publish in one reaches a
// subscriber in the other, and the schema's region placement puts each
// message stream and the buckets in the region it names.
func TestRegionsSupercluster(t *testing.T) {
	dir := t.TempDir()
	auth := filepath.Join(dir, "auth.json")
	gwAddr := map[string]string{"east": testbin.FreeAddr(t), "west": testbin.FreeAddr(t)}
	gateways := []natsrv.Gateway{
		{Name: "east", URLs: []string{"nats://" + gwAddr["east"]}}, // each node skips its own
		{Name: "west", URLs: []string{"nats://" + gwAddr["west"]}},
	}
	region := func(name string) *natsrv.Server {
		// A JetStream cluster needs a route: a one-node cluster names
		// its own.
		route := testbin.FreeAddr(t)
		s, err := natsrv.Start(t.Context(), natsrv.Config{
			Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, name), AuthFile: auth,
			ServerName: name + "1", ClusterName: name, ClusterListen: route, Routes: []string{"nats-route://" + route},
			GatewayListen: gwAddr[name], Gateways: gateways, Streams: 2,
		})
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() { shutdown(t, s) })
		return s
	}
	east, west := region("east"), region("west")

	connect := func(s *natsrv.Server) *nats.Conn {
		nc, err := nats.Connect(s.OperatorURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	ne, nw := connect(east), connect(west)
	sub, err := nw.SubscribeSync("natter.test.region")
	if err != nil {
		t.Fatal(err)
	}
	if err := nw.Flush(); err != nil {
		t.Fatal(err)
	}
	// The gateways connect, and interest crosses them, in their own time.
	deadline := time.Now().Add(time.Minute)
	for {
		if err := ne.Publish("natter.test.region", []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if m, err := sub.NextMsg(200 * time.Millisecond); err == nil {
			if string(m.Data) != "hi" {
				t.Fatalf("got %q", m.Data)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a publish in east never reached the subscriber in west")
		}
	}

	js, err := jetstream.New(ne)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := schema.Config{Replicas: 1, Streams: 2, Regions: schema.Regions{Home: "east", Streams: []string{"west", "east"}}}
	for {
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		err := schema.Ensure(actx, js, cfg)
		acancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("schema.Ensure: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // the meta group elects its leader
	}
	for stream, want := range map[string]string{
		"CHAT_0": "west", "CHAT_1": "east", schema.KVStream(schema.BucketConversations): "east", schema.StreamDead: "east",
	} {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info := st.CachedInfo()
		if info.Cluster == nil || info.Cluster.Name != want || schema.StreamRegion(info.Config) != want {
			t.Errorf("%s is in %+v (placement %+v), want %s", stream, info.Cluster, info.Config.Placement, want)
		}
	}
}
