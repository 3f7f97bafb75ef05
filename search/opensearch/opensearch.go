// Package opensearch is the search index on OpenSearch 2.19 (or a
// compatible Elasticsearch 7 API), spoken to over its REST API with
// net/http: one index of messages, written with _bulk (refresh=wait_for,
// so a write is found once Write returns; the translog makes it durable by
// then) and queried with _search. It is the backend beyond one machine:
// any number of indexers may share it.
package opensearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/search"
)

// Config says where the index is.
type Config struct {
	// URL of the OpenSearch HTTP API, e.g. http://127.0.0.1:9200
	// (credentials, if any, in its userinfo).
	URL string
	// Index is the index name; "natter-messages" by default.
	Index string
	// Shards and Replicas of a new index; 1 and 0 by default (a test node).
	Shards, Replicas int
	// Client is the HTTP client; one with a 30 s timeout by default.
	Client *http.Client
}

// Index is an OpenSearch index of messages.
type Index struct {
	base   string
	index  string
	client *http.Client
}

var _ search.Index = (*Index)(nil)

// ErrStatus wraps an unexpected HTTP status of OpenSearch.
var ErrStatus = errors.New("opensearch: unexpected status")

// New connects to cfg.URL and creates the index when it does not exist.
func New(ctx context.Context, cfg Config) (*Index, error) {
	if cfg.URL == "" {
		return nil, errors.New("opensearch: no URL")
	}
	if cfg.Index == "" {
		cfg.Index = "natter-messages"
	}
	if cfg.Shards <= 0 {
		cfg.Shards = 1
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	x := &Index{base: strings.TrimRight(cfg.URL, "/"), index: cfg.Index, client: cfg.Client}
	status, _, err := x.do(ctx, http.MethodHead, "/"+url.PathEscape(x.index), nil)
	if err != nil {
		return nil, err
	}
	if status == http.StatusOK {
		// An index made before a field was added gets it (adding
		// fields is allowed; its older documents lack them: see
		// docs/operations.md, "Search").
		status, body, err := x.do(ctx, http.MethodPut, "/"+url.PathEscape(x.index)+"/_mapping", map[string]any{"properties": added})
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("%w: update mapping of %s: %d %s", ErrStatus, x.index, status, body)
		}
		return x, nil
	}
	// No stop words (the standard analyzer's default), as the embedded
	// index; okey (search.OrderKey) sorts and pages.
	props := map[string]any{
		"conv":     map[string]any{"type": "keyword"},
		"seq":      map[string]any{"type": "long"},
		"sender":   map[string]any{"type": "keyword"},
		"ts":       map[string]any{"type": "keyword", "index": false},
		"text":     map[string]any{"type": "text", "analyzer": "standard"},
		"edit_seq": map[string]any{"type": "long", "index": false},
	}
	for k, v := range added {
		props[k] = v
	}
	mapping := map[string]any{
		"settings": map[string]any{"number_of_shards": cfg.Shards, "number_of_replicas": cfg.Replicas},
		"mappings": map[string]any{"dynamic": "strict", "properties": props},
	}
	status, body, err := x.do(ctx, http.MethodPut, "/"+url.PathEscape(x.index), mapping)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK && !bytes.Contains(body, []byte("resource_already_exists_exception")) {
		return nil, fmt.Errorf("%w: create index %s: %d %s", ErrStatus, x.index, status, body)
	}
	return x, nil
}

// added are the fields added to the mapping after the first release; New
// puts them into an index that lacks them.
var added = map[string]any{
	"okey":       map[string]any{"type": "keyword"},
	"expires_at": map[string]any{"type": "date", "format": "strict_date_optional_time_nanos"},
}

// do sends one request with a JSON body (or NDJSON, when body is a
// []byte) and returns the status and the response body.
func (x *Index) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		r, ctype = bytes.NewReader(b), "application/x-ndjson"
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, x.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if r != nil {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := x.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("opensearch %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("opensearch %s %s: %w", method, path, err)
	}
	return resp.StatusCode, data, nil
}

type source struct {
	Conv    string `json:"conv"`
	Seq     uint64 `json:"seq"`
	Sender  string `json:"sender"`
	TS      string `json:"ts"`
	Text    string `json:"text"`
	EditSeq uint64 `json:"edit_seq"`
	OKey    string `json:"okey,omitempty"`
	// ExpiresAt is a disappearing message's expires_at.
	ExpiresAt string `json:"expires_at,omitempty"`
}

// Write implements search.Index: one _bulk request, deletes first, waiting
// for the refresh that makes it searchable.
func (x *Index) Write(ctx context.Context, put []search.Doc, del []search.Key) error {
	if len(put) == 0 && len(del) == 0 {
		return nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, k := range del {
		_ = enc.Encode(map[string]any{"delete": map[string]string{"_id": k.ID()}})
	}
	for _, d := range put {
		_ = enc.Encode(map[string]any{"index": map[string]string{"_id": d.Key().ID()}})
		_ = enc.Encode(source{Conv: d.Conv, Seq: d.Seq, Sender: d.Sender, TS: d.TS, Text: d.Text, EditSeq: d.EditSeq, OKey: d.Order(), ExpiresAt: d.ExpiresAt})
	}
	return x.bulk(ctx, b.Bytes())
}

// bulk sends one _bulk request, waiting for the refresh that makes it
// searchable; deleting what is not there is no error.
func (x *Index) bulk(ctx context.Context, ndjson []byte) error {
	status, body, err := x.do(ctx, http.MethodPost, "/"+url.PathEscape(x.index)+"/_bulk?refresh=wait_for", ndjson)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%w: bulk: %d %s", ErrStatus, status, body)
	}
	var res struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			Status int             `json:"status"`
			Error  json.RawMessage `json:"error"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return fmt.Errorf("opensearch bulk: %w", err)
	}
	if !res.Errors {
		return nil
	}
	for _, item := range res.Items {
		for op, r := range item {
			if op == "delete" && r.Status == http.StatusNotFound {
				continue
			}
			if r.Status >= 300 {
				return fmt.Errorf("%w: bulk %s: %d %s", ErrStatus, op, r.Status, r.Error)
			}
		}
	}
	return nil
}

// Get implements search.Index.
func (x *Index) Get(ctx context.Context, k search.Key) (*search.Doc, error) {
	status, body, err := x.do(ctx, http.MethodGet, "/"+url.PathEscape(x.index)+"/_doc/"+url.PathEscape(k.ID()), nil)
	if err != nil {
		return nil, err
	}
	if status == http.StatusNotFound {
		return nil, search.ErrNotFound
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("%w: get: %d %s", ErrStatus, status, body)
	}
	var res struct {
		Found  bool   `json:"found"`
		Source source `json:"_source"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("opensearch get: %w", err)
	}
	if !res.Found {
		return nil, search.ErrNotFound
	}
	s := res.Source
	return &search.Doc{Conv: s.Conv, Seq: s.Seq, Sender: s.Sender, TS: s.TS, Text: s.Text, EditSeq: s.EditSeq, ExpiresAt: s.ExpiresAt}, nil
}

// Search implements search.Index.
func (x *Index) Search(ctx context.Context, q search.Query) (search.Page, error) {
	after, err := search.ParseCursor(q.Cursor)
	if err != nil {
		return search.Page{}, err
	}
	if q.Text == "" || len(q.Convs) == 0 {
		return search.Page{}, nil
	}
	limit := search.Limit(q.Limit)
	filter := []any{map[string]any{"terms": map[string]any{"conv": q.Convs}}}
	req := map[string]any{
		"size":             limit + 1,
		"track_total_hits": false,
		"_source":          []string{"conv", "seq", "sender", "ts"},
		// Documents written before okey was (no okey) come last, by seq.
		"sort": []any{map[string]any{"okey": map[string]any{"order": "desc", "missing": "_last"}}, map[string]any{"seq": "desc"}},
		"query": map[string]any{"bool": map[string]any{
			"must":   []any{map[string]any{"match": map[string]any{"text": map[string]any{"query": q.Text, "operator": "and"}}}},
			"filter": filter,
			// What expired is left out, whether or not Expire removed
			// it yet.
			"must_not": []any{map[string]any{"range": map[string]any{"expires_at": map[string]any{"lte": protocol.FormatTime(time.Now())}}}},
		}},
		"highlight": map[string]any{
			"pre_tags": []string{"<mark>"}, "post_tags": []string{"</mark>"}, "encoder": "html",
			"fields": map[string]any{"text": map[string]any{"number_of_fragments": 1, "fragment_size": search.FragmentBytes}},
		},
	}
	if after != "" {
		req["search_after"] = []any{after, 0} // okey is unique: after the hit itself
	}
	status, body, err := x.do(ctx, http.MethodPost, "/"+url.PathEscape(x.index)+"/_search", req)
	if err != nil {
		return search.Page{}, err
	}
	if status != http.StatusOK {
		return search.Page{}, fmt.Errorf("%w: search: %d %s", ErrStatus, status, body)
	}
	var res struct {
		Hits struct {
			Hits []struct {
				Source    source              `json:"_source"`
				Highlight map[string][]string `json:"highlight"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return search.Page{}, fmt.Errorf("opensearch search: %w", err)
	}
	var p search.Page
	for i, h := range res.Hits.Hits {
		if i == limit {
			last := &p.Hits[limit-1]
			p.Cursor = search.OrderKey(last.TS, last.Seq, last.Conv)
			break
		}
		s := h.Source
		hit := search.Hit{Conv: s.Conv, Seq: s.Seq, Sender: s.Sender, TS: s.TS}
		for _, f := range h.Highlight["text"] {
			hit.Highlights = append(hit.Highlights, normalize(f))
		}
		p.Hits = append(p.Hits, hit)
	}
	return p, nil
}

// Expire implements search.Index: it finds what has an expires_at at or
// before now, a thousand at a time, and deletes it with _bulk (a delete
// by query needs OpenSearch's reindex module, which a node need not have).
func (x *Index) Expire(ctx context.Context, now time.Time) (int, error) {
	q := map[string]any{"size": 1000, "_source": false, "track_total_hits": false,
		"query": map[string]any{"range": map[string]any{"expires_at": map[string]any{"lte": protocol.FormatTime(now)}}}}
	n := 0
	for {
		status, body, err := x.do(ctx, http.MethodPost, "/"+url.PathEscape(x.index)+"/_search", q)
		if err != nil {
			return n, err
		}
		if status != http.StatusOK {
			return n, fmt.Errorf("%w: expire: %d %s", ErrStatus, status, body)
		}
		var res struct {
			Hits struct {
				Hits []struct {
					ID string `json:"_id"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			return n, fmt.Errorf("opensearch expire: %w", err)
		}
		if len(res.Hits.Hits) == 0 {
			return n, nil
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		for _, h := range res.Hits.Hits {
			_ = enc.Encode(map[string]any{"delete": map[string]string{"_id": h.ID}})
		}
		if err := x.bulk(ctx, b.Bytes()); err != nil {
			return n, err
		}
		n += len(res.Hits.Hits)
	}
}

// normalize re-escapes a highlight the way the embedded index does
// (html.EscapeString), since OpenSearch's encoder spells some characters
// otherwise (&#x2F; for /): clients see one form whatever the backend.
func normalize(frag string) string {
	var b strings.Builder
	for {
		i := strings.Index(frag, "<mark>")
		if i < 0 {
			b.WriteString(html.EscapeString(html.UnescapeString(frag)))
			return b.String()
		}
		j := strings.Index(frag[i:], "</mark>")
		if j < 0 {
			b.WriteString(html.EscapeString(html.UnescapeString(frag)))
			return b.String()
		}
		b.WriteString(html.EscapeString(html.UnescapeString(frag[:i])))
		b.WriteString("<mark>")
		b.WriteString(html.EscapeString(html.UnescapeString(frag[i+len("<mark>") : i+j])))
		b.WriteString("</mark>")
		frag = frag[i+j+len("</mark>"):]
	}
}

// Delete removes the whole index (tests, and an operator's rebuild).
func (x *Index) Delete(ctx context.Context) error {
	status, body, err := x.do(ctx, http.MethodDelete, "/"+url.PathEscape(x.index), nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK && status != http.StatusNotFound {
		return fmt.Errorf("%w: delete index: %d %s", ErrStatus, status, body)
	}
	return nil
}

// Close implements search.Index.
func (x *Index) Close() error {
	x.client.CloseIdleConnections()
	return nil
}
