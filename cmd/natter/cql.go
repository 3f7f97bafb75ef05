package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/history/scyllastore"
)

// cqlFlags are the flags that point the history store at ScyllaDB (or
// Cassandra) instead of the embedded store.
type cqlFlags struct {
	hosts, keyspace, consistency, localDC, replication string
	migrate                                            bool
}

func addCQLFlags(fs *flag.FlagSet, withMigrate bool) *cqlFlags {
	f := &cqlFlags{}
	fs.StringVar(&f.hosts, "cql", "", "ScyllaDB/Cassandra contact points, host[:port],... : use it as the history store instead of the embedded one")
	fs.StringVar(&f.keyspace, "keyspace", "natter", "keyspace of the history tables")
	fs.StringVar(&f.consistency, "cql-consistency", scyllastore.DefaultConsistency, "consistency of history reads and writes")
	fs.StringVar(&f.localDC, "cql-local-dc", "", "data center to route requests to (DC-aware, token-aware)")
	fs.StringVar(&f.replication, "replication", "SimpleStrategy:1", `keyspace replication when it is created: "SimpleStrategy:N" or "NetworkTopologyStrategy:dc1=3,dc2=3"`)
	if withMigrate {
		fs.BoolVar(&f.migrate, "cql-migrate", true, "create the keyspace and tables if missing on start (natter migrate does it alone)")
	}
	return f
}

func (f *cqlFlags) config() (scyllastore.Config, error) {
	cfg := scyllastore.Config{
		Hosts:       strings.Split(f.hosts, ","),
		Keyspace:    f.keyspace,
		Consistency: f.consistency,
		LocalDC:     f.localDC,
	}
	class, spec, _ := strings.Cut(f.replication, ":")
	switch class {
	case scyllastore.SimpleStrategy:
		n, err := strconv.Atoi(spec)
		if err != nil || n < 1 {
			return cfg, fmt.Errorf("--replication %q: SimpleStrategy needs a factor ≥ 1", f.replication)
		}
		cfg.Replication = scyllastore.Replication{Class: class, Factor: n}
	case scyllastore.NetworkTopologyStrategy:
		dcs := map[string]int{}
		for _, kv := range strings.Split(spec, ",") {
			dc, v, ok := strings.Cut(kv, "=")
			n, err := strconv.Atoi(v)
			if !ok || err != nil || n < 1 || dc == "" {
				return cfg, fmt.Errorf("--replication %q: NetworkTopologyStrategy needs comma-separated dc=N pairs", f.replication)
			}
			dcs[dc] = n
		}
		cfg.Replication = scyllastore.Replication{Class: class, DataCenters: dcs}
	default:
		return cfg, fmt.Errorf("--replication %q: class must be SimpleStrategy or NetworkTopologyStrategy", f.replication)
	}
	return cfg, nil
}

// history adds the CQL store to h when --cql names one: it replaces the
// embedded store, and every role may read it. app opens it (and migrates
// first with --cql-migrate), in the one place the backend is chosen.
func (f *cqlFlags) history(h *app.HistoryConfig) error {
	if f.hosts == "" {
		return nil
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	*h = app.HistoryConfig{CQL: &cfg, Migrate: f.migrate}
	return nil
}

// migrateCmd creates or updates the history keyspace and tables, and with
// --nats-url the NATS schema; running it again changes nothing.
func migrateCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := addCQLFlags(fs, false)
	migrateNATS := addMigrateNATSFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.hosts == "" && !migrateNATS.set() {
		return errors.New("--cql host[:port],... or --nats-url is required")
	}
	if migrateNATS.set() {
		if err := migrateNATS.run(stdout); err != nil {
			return err
		}
		if f.hosts == "" {
			return nil
		}
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := scyllastore.Migrate(ctx, cfg); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "keyspace %s is up to date\n", cfg.Keyspace)
	return err
}
