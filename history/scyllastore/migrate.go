package scyllastore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"
)

// schemaCQL is the schema Migrate applies, one statement per ';'.
//
//go:embed schema.cql
var schemaCQL string

// Replication strategy classes for Replication.Class.
const (
	SimpleStrategy          = "SimpleStrategy"
	NetworkTopologyStrategy = "NetworkTopologyStrategy"
)

// Replication is the replication of the keyspace Migrate creates. The zero
// value is SimpleStrategy with one replica: right for one test node, wrong
// for production, which wants NetworkTopologyStrategy with 3 replicas per
// data center so LOCAL_QUORUM survives a node.
type Replication struct {
	// Class is SimpleStrategy (default) or NetworkTopologyStrategy.
	Class string
	// Factor is the replica count for SimpleStrategy; default 1.
	Factor int
	// DataCenters maps data center name to replica count for
	// NetworkTopologyStrategy.
	DataCenters map[string]int
}

// cql renders the replication map of CREATE KEYSPACE.
func (r Replication) cql() (string, error) {
	switch r.Class {
	case "", SimpleStrategy:
		f := r.Factor
		if f <= 0 {
			f = 1
		}
		return fmt.Sprintf("{'class': 'SimpleStrategy', 'replication_factor': %d}", f), nil
	case NetworkTopologyStrategy:
		if len(r.DataCenters) == 0 {
			return "", fmt.Errorf("%w: NetworkTopologyStrategy needs DataCenters", ErrConfig)
		}
		parts := []string{"'class': 'NetworkTopologyStrategy'"}
		for _, dc := range slices.Sorted(maps.Keys(r.DataCenters)) {
			n := r.DataCenters[dc]
			if n <= 0 || strings.ContainsAny(dc, `'\`) {
				return "", fmt.Errorf("%w: data center %q: %d replicas", ErrConfig, dc, n)
			}
			parts = append(parts, fmt.Sprintf("'%s': %d", dc, n))
		}
		return "{" + strings.Join(parts, ", ") + "}", nil
	default:
		return "", fmt.Errorf("%w: replication class %q", ErrConfig, r.Class)
	}
}

// Migrate creates the keyspace (with cfg.Replication) and the tables of
// schema.cql if they do not exist, and records the bucket size on first
// run. Running it again changes nothing; it never alters an existing
// keyspace's replication (use ALTER KEYSPACE) and fails with ErrBucketSize
// if cfg.BucketSize differs from the recorded one.
func Migrate(ctx context.Context, cfg Config) error {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return err
	}
	repl, err := cfg.Replication.cql()
	if err != nil {
		return err
	}
	size := cfg.BucketSize
	if size == 0 {
		size = DefaultBucketSize
	}
	admin, err := connect(ctx, cfg, "")
	if err != nil {
		return err
	}
	create := fmt.Sprintf("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s", cfg.Keyspace, repl)
	err = admin.ContextQuery(ctx, create, nil).Exec()
	admin.Close()
	if err != nil {
		return fmt.Errorf("scyllastore: create keyspace %s: %w", cfg.Keyspace, err)
	}

	session, err := connect(ctx, cfg, cfg.Keyspace)
	if err != nil {
		return err
	}
	defer session.Close()
	for _, st := range statements(schemaCQL) {
		if err := session.ContextQuery(ctx, st, nil).Exec(); err != nil {
			return fmt.Errorf("scyllastore: migrate %s: %q: %w", cfg.Keyspace, firstLine(st), err)
		}
	}
	if err := addColumns(ctx, session, cfg.Keyspace, "messages", replyColumns); err != nil {
		return err
	}
	if err := addColumns(ctx, session, cfg.Keyspace, "messages", expiryColumns); err != nil {
		return err
	}
	if err := session.Session.AwaitSchemaAgreement(ctx); err != nil {
		return fmt.Errorf("scyllastore: schema agreement: %w", err)
	}
	// The one lightweight transaction: the first Migrate fixes the bucket
	// size, later ones (and racing ones) read it.
	var applied bool
	existing := map[string]any{}
	applied, err = session.ContextQuery(ctx,
		"INSERT INTO settings (name, value) VALUES (?, ?) IF NOT EXISTS", nil).
		Bind("bucket_size", strconv.FormatUint(size, 10)).
		SerialConsistency(gocql.Serial).MapScanCAS(existing)
	if err != nil {
		return fmt.Errorf("scyllastore: record bucket size: %w", err)
	}
	if !applied && cfg.BucketSize != 0 {
		if got := fmt.Sprint(existing["value"]); got != strconv.FormatUint(cfg.BucketSize, 10) {
			return fmt.Errorf("%w: config %d, keyspace %s %s", ErrBucketSize, cfg.BucketSize, cfg.Keyspace, got)
		}
	}
	size, err = readBucketSize(ctx, session)
	if err != nil {
		return err
	}
	// Once per keyspace: the seq mark Append relies on (mark.go).
	return newStore(session, size, cfg.WriteConcurrency).completeMark(ctx)
}

// replyColumns are the columns of messages that migrate step 2 adds
// (replies, threads, mentions, moderator deletes): reply_to and quote (the
// quote's JSON) of a reply, thread of a thread reply, mentions, deleted_by
// of a moderator's delete, and the root's thread_count and
// thread_last_seq. Rows written before have them null, read as zero.
var replyColumns = [][2]string{
	{"reply_to", "bigint"},
	{"quote", "blob"},
	{"thread", "bigint"},
	{"mentions", "list<text>"},
	{"deleted_by", "text"},
	{"thread_count", "bigint"},
	{"thread_last_seq", "bigint"},
}

// addColumns adds those of cols table lacks. ALTER TABLE ... ADD IF NOT
// EXISTS is not in every Cassandra and Scylla version, so it asks
// system_schema which columns exist; two Migrates racing may both add a
// column, and the second's "already exists" is not an error.
func addColumns(ctx context.Context, session gocqlx.Session, keyspace, table string, cols [][2]string) error {
	var have []string
	err := session.ContextQuery(ctx, "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?", nil).
		Bind(keyspace, table).SelectRelease(&have)
	if err != nil {
		return fmt.Errorf("scyllastore: columns of %s.%s: %w", keyspace, table, err)
	}
	for _, c := range cols {
		if slices.Contains(have, c[0]) {
			continue
		}
		err := session.ContextQuery(ctx, fmt.Sprintf("ALTER TABLE %s ADD %s %s", table, c[0], c[1]), nil).Exec()
		if err != nil && !strings.Contains(strings.ToLower(err.Error()), "already exist") {
			return fmt.Errorf("scyllastore: migrate %s: add column %s: %w", keyspace, c[0], err)
		}
	}
	return nil
}

// readBucketSize reads the bucket size Migrate recorded.
func readBucketSize(ctx context.Context, session gocqlx.Session) (uint64, error) {
	var v string
	err := session.ContextQuery(ctx, "SELECT value FROM settings WHERE name = ?", nil).
		Bind("bucket_size").Scan(&v)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, fmt.Errorf("%w: no bucket_size setting", ErrNotMigrated)
	}
	var reqErr gocql.RequestError
	if errors.As(err, &reqErr) && reqErr.Code() == gocql.ErrCodeInvalid {
		return 0, fmt.Errorf("%w: %w", ErrNotMigrated, err)
	}
	if err != nil {
		return 0, fmt.Errorf("scyllastore: read settings: %w", err)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%w: bucket_size %q", ErrConfig, v)
	}
	return n, nil
}

// statements splits CQL text into statements, dropping comments.
func statements(text string) []string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
			lines = append(lines, l)
		}
	}
	var out []string
	for _, st := range strings.Split(strings.Join(lines, "\n"), ";") {
		if st = strings.TrimSpace(st); st != "" {
			out = append(out, st)
		}
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
