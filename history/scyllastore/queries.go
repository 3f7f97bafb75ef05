package scyllastore

import (
	"github.com/scylladb/gocqlx/v2/qb"
)

// stmt is a CQL statement and its bind names, built once by buildQueries.
type stmt struct {
	cql   string
	names []string
}

func build(b interface{ ToCql() (string, []string) }) stmt {
	cql, names := b.ToCql()
	return stmt{cql: cql, names: names}
}

// rowColumns are the columns a page reads.
var rowColumns = []string{"seq", "sender", "client_id", "ts", "kind", "ref", "body", "edit_body", "edit_seq", "deleted",
	"reply_to", "quote", "thread", "mentions", "deleted_by", "thread_count", "thread_last_seq", "expires_at"}

// queries holds every statement the Store runs.
type queries struct {
	insertBucket              stmt
	stored, target            stmt
	insertRowTS               stmt // write timestamp first-class: batched writes
	setEditTS, setDelTS       stmt // bind it (USING TIMESTAMP ?)
	setThreadTS               stmt
	insertThread              stmt
	threadAfter, threadBefore stmt
	rowsIn                    stmt
	rowsAfter, rowsBefore     stmt
	bucketsFrom, bucketsUpTo  stmt
	lastSeq, countPlain       stmt
	eraseRow, unquoteRow      stmt // erase.go: the server's write time
	dropRows, dropThread      stmt // retain.go: the server's write time
}

func buildQueries() queries {
	partition := []qb.Cmp{qb.Eq("conv"), qb.Eq("bucket")}
	one := append(partition[:2:2], qb.Eq("seq"))
	return queries{
		insertBucket: build(qb.Insert("buckets").Columns("conv", "bucket")),
		insertRowTS: build(qb.Insert("messages").
			Columns("conv", "bucket", "seq", "sender", "client_id", "ts", "kind", "ref", "body",
				"reply_to", "quote", "thread", "mentions", "expires_at").TTLNamed("ttl").TimestampNamed("ts_write")),
		stored: build(qb.Select("messages").Columns(rowColumns...).
			Where(append(partition[:2:2], qb.In("seq"))...)),
		target: build(qb.Select("messages").Columns("sender", "kind", "edit_seq", "deleted",
			"thread", "thread_count", "thread_last_seq", "expires_at").Where(one...)),
		// Updates of a row that expires carry its remaining TTL: cells
		// written without one would outlive the row (expiry.go).
		setEditTS: build(qb.Update("messages").TTLNamed("ttl").TimestampNamed("ts_write").
			Set("edit_body", "edit_seq").Where(one...)),
		setDelTS: build(qb.Update("messages").TTLNamed("ttl").TimestampNamed("ts_write").SetLit("deleted", "true").
			SetLit("body", "null").SetLit("edit_body", "null").Set("deleted_by").Where(one...)),
		setThreadTS: build(qb.Update("messages").TTLNamed("ttl").TimestampNamed("ts_write").
			Set("thread_count", "thread_last_seq").Where(one...)),
		insertThread: build(qb.Insert("thread_replies").Columns("conv", "root", "seq").TTLNamed("ttl")),
		threadAfter: build(qb.Select("thread_replies").Columns("seq").
			Where(qb.Eq("conv"), qb.Eq("root"), qb.Gt("seq")).OrderBy("seq", qb.ASC).LimitNamed("limit")),
		threadBefore: build(qb.Select("thread_replies").Columns("seq").
			Where(qb.Eq("conv"), qb.Eq("root"), qb.Lt("seq")).OrderBy("seq", qb.DESC).LimitNamed("limit")),
		rowsIn: build(qb.Select("messages").Columns(rowColumns...).
			Where(append(partition[:2:2], qb.In("seq"))...)),
		rowsAfter: build(qb.Select("messages").Columns(rowColumns...).
			Where(append(partition[:2:2], qb.Gt("seq"))...).OrderBy("seq", qb.ASC).LimitNamed("limit")),
		rowsBefore: build(qb.Select("messages").Columns(rowColumns...).
			Where(append(partition[:2:2], qb.Lt("seq"))...).LimitNamed("limit")),
		bucketsFrom: build(qb.Select("buckets").Columns("bucket").
			Where(qb.Eq("conv"), qb.GtOrEq("bucket")).OrderBy("bucket", qb.ASC)),
		bucketsUpTo: build(qb.Select("buckets").Columns("bucket").
			Where(qb.Eq("conv"), qb.LtOrEq("bucket"))),
		lastSeq: build(qb.Select("messages").Columns("seq").Where(partition...).Limit(1)),
		eraseRow: build(qb.Update("messages").SetLit("deleted", "true").SetLit("body", "null").
			SetLit("edit_body", "null").Where(one...)),
		unquoteRow: build(qb.Update("messages").Set("quote").Where(one...)),
		dropRows:   build(qb.Delete("messages").Where(append(partition[:2:2], qb.In("seq"))...)),
		dropThread: build(qb.Delete("thread_replies").Where(qb.Eq("conv"), qb.Eq("root"), qb.Eq("seq"))),
		// Filtering on kind inside one partition reads only that
		// partition's rows above seq: the cost stays proportional to them.
		countPlain: build(qb.Select("messages").CountAll().
			Where(append(partition[:2:2], qb.Gt("seq"), qb.Eq("kind"))...).AllowFiltering()),
	}
}
