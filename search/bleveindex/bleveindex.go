// Package bleveindex is the embedded search index: Bleve
// (github.com/blevesearch/bleve/v2, its scorch engine) in a directory of
// its own under --data. It is the default of one machine; the indexer
// that writes it must be the only one of its cluster (docs/operations.md).
package bleveindex

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/index/scorch/mergeplan"
	"github.com/blevesearch/bleve/v2/mapping"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/search"
)

// Config says where the index lives.
type Config struct {
	// Dir is the index's directory, created on first use.
	Dir string
}

// Index is a Bleve index of messages.
type Index struct {
	b  bleve.Index
	an analysis.Analyzer // the text's
	// sort is the field hits are sorted by, descending: fKey; in an
	// index made before fKey was (legacy), fOrder, or fSeq in one made
	// before fOrder was.
	sort string
	// legacy: the index has no fKey. It sorts by seq and pages with
	// seq cursors (search.ParseSeqCursor), which orders the messages of
	// one stream right but not those of several partition streams;
	// `natter search rebuild` into an empty index makes a current one
	// (docs/operations.md).
	legacy bool
	// windows: the index has fHour (made since it was), so Search may
	// look at the newest hours first. An index made before searches
	// everything at once, as it did.
	windows bool
}

var _ search.Index = (*Index)(nil)

// Field names of a document.
const (
	fConv    = "conv"
	fSeq     = "seq"
	fSender  = "sender"
	fTS      = "ts"
	fText    = "text"
	fEditSeq = "edit_seq"
	// fOrder is the seq as 16 hex digits, a keyword: the sort. Sorting
	// by the numeric seq would read its doc values, which hold every
	// precision term Bleve indexes a number under (16 per document, for
	// its range queries), decompressed for each matching document; this
	// one holds one short term.
	fOrder = "order"
	// fKey is the doc's search.OrderKey, a keyword with doc values: the
	// sort, and with SearchAfter the cursor. It replaced fOrder (the
	// seq only, which does not order the messages of several partition
	// streams).
	fKey = "okey"
	// fExpiresAt is a disappearing message's expires_at (stored only:
	// Search leaves out what expired) and fExpires the same as Unix
	// milliseconds (indexed only: Expire finds what expired). A message
	// that does not expire has neither.
	fExpiresAt = "expires_at"
	fExpires   = "expires"
	// fHour is the hour of the doc's ts (hours since 1970 in 16 hex
	// digits, the hour of its fKey), a keyword: Search's windows (see
	// windowTop, nextWindow) are a term range of it.
	fHour    = "hour"
	analyzer = "natter"
)

// New opens the index in cfg.Dir, creating it when there is none.
func New(cfg Config) (*Index, error) {
	if cfg.Dir == "" {
		return nil, errors.New("bleveindex: no directory")
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, "index_meta.json")); err == nil {
		b, err := bleve.Open(cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("open search index %s: %w", cfg.Dir, err)
		}
		return wrap(b)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Dir), 0o755); err != nil {
		return nil, err
	}
	m, err := indexMapping()
	if err != nil {
		return nil, err
	}
	return create(cfg.Dir, m)
}

func create(dir string, m mapping.IndexMapping) (*Index, error) {
	b, err := bleve.New(dir, m)
	if err != nil {
		return nil, fmt.Errorf("create search index %s: %w", dir, err)
	}
	return wrap(b)
}

func wrap(b bleve.Index) (*Index, error) {
	an := b.Mapping().AnalyzerNamed(analyzer)
	if an == nil {
		_ = b.Close()
		return nil, fmt.Errorf("search index: its mapping has no analyzer %q", analyzer)
	}
	x := &Index{b: b, an: an, sort: fSeq, legacy: true}
	if dm, ok := b.Mapping().(*mapping.IndexMappingImpl); ok && dm.DefaultMapping != nil {
		switch {
		case dm.DefaultMapping.Properties[fKey] != nil:
			x.sort, x.legacy = fKey, false
			x.windows = dm.DefaultMapping.Properties[fHour] != nil
		case dm.DefaultMapping.Properties[fOrder] != nil:
			x.sort = fOrder
		}
	}
	return x, nil
}

// indexMapping analyzes text by Unicode word boundaries, lower-cased, with
// no stop words (as OpenSearch's standard analyzer): "the" is findable.
//
// It indexes only what a query reads: the words of the text (without
// term vectors: the highlights are made from the stored text, see
// highlights), the conversation (a keyword, for the filter) and fKey (a
// keyword with doc values: the sort and the cursor). The seq is stored
// only, and the
// sender, time and edit seq are stored only, and no field goes into
// Bleve's composite _all field, which would index the text a second time.
// Indexes made before (with term vectors and everything indexed) are read
// the same way.
func indexMapping() (mapping.IndexMapping, error) {
	im := bleve.NewIndexMapping()
	if err := im.AddCustomAnalyzer(analyzer, map[string]any{
		"type": custom.Name, "tokenizer": unicode.Name, "token_filters": []string{lowercase.Name},
	}); err != nil {
		return nil, err
	}
	im.DefaultAnalyzer = analyzer
	im.StoreDynamic, im.IndexDynamic, im.DocValuesDynamic = false, false, false
	dm := bleve.NewDocumentStaticMapping()
	text := bleve.NewTextFieldMapping()
	text.Analyzer = analyzer
	text.IncludeTermVectors = false
	text.IncludeInAll = false
	text.DocValues = false
	text.SkipFreqNorm = true // never scored
	dm.AddFieldMappingsAt(fText, text)
	conv := bleve.NewKeywordFieldMapping()
	conv.IncludeTermVectors, conv.IncludeInAll, conv.DocValues, conv.SkipFreqNorm = false, false, false, true
	dm.AddFieldMappingsAt(fConv, conv)
	for _, f := range []string{fSender, fTS, fExpiresAt} {
		kw := bleve.NewKeywordFieldMapping()
		kw.Index, kw.IncludeTermVectors, kw.IncludeInAll, kw.DocValues = false, false, false, false
		dm.AddFieldMappingsAt(f, kw)
	}
	for _, f := range []string{fSeq, fEditSeq} {
		n := bleve.NewNumericFieldMapping()
		n.Index, n.IncludeInAll, n.DocValues = false, false, false
		dm.AddFieldMappingsAt(f, n)
	}
	hour := bleve.NewKeywordFieldMapping()
	hour.Store, hour.IncludeTermVectors, hour.IncludeInAll, hour.DocValues, hour.SkipFreqNorm = false, false, false, false, true
	dm.AddFieldMappingsAt(fHour, hour)
	exp := bleve.NewNumericFieldMapping()
	exp.Store, exp.IncludeInAll, exp.DocValues = false, false, false
	dm.AddFieldMappingsAt(fExpires, exp)
	key := bleve.NewKeywordFieldMapping()
	key.Store, key.IncludeTermVectors, key.IncludeInAll, key.SkipFreqNorm = false, false, false, true
	dm.AddFieldMappingsAt(fKey, key) // DocValues kept: the sort
	im.DefaultMapping = dm
	return im, nil
}

// Write implements search.Index: one Bleve batch, which returns once
// scorch persisted it.
func (x *Index) Write(ctx context.Context, put []search.Doc, del []search.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(put) == 0 && len(del) == 0 {
		return nil
	}
	b := x.b.NewBatch()
	for _, k := range del {
		b.Delete(k.ID())
	}
	for i := range put {
		d := &put[i]
		key := d.Order()
		fields := map[string]any{
			fConv: d.Conv, fSeq: float64(d.Seq), fOrder: orderKey(d.Seq), fKey: key, fHour: hourOf(key), fSender: d.Sender, fTS: d.TS, fText: d.Text, fEditSeq: float64(d.EditSeq),
		}
		if d.ExpiresAt != "" {
			if x.legacy {
				// Its mapping has no expiry fields: such an index never
				// held disappearing messages, and does not now.
				b.Delete(d.Key().ID())
				continue
			}
			t, _ := protocol.ParseExpiry(d.ExpiresAt)
			fields[fExpiresAt], fields[fExpires] = d.ExpiresAt, float64(t.UnixMilli())
		}
		if err := b.Index(d.Key().ID(), fields); err != nil {
			return fmt.Errorf("index %s: %w", d.Key().ID(), err)
		}
	}
	if err := x.b.Batch(b); err != nil {
		return fmt.Errorf("search index write: %w", err)
	}
	return nil
}

// Get implements search.Index.
func (x *Index) Get(ctx context.Context, k search.Key) (*search.Doc, error) {
	req := bleve.NewSearchRequestOptions(bleve.NewDocIDQuery([]string{k.ID()}), 1, 0, false)
	req.Fields = []string{"*"}
	res, err := x.b.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("search index get: %w", err)
	}
	if len(res.Hits) == 0 {
		return nil, search.ErrNotFound
	}
	f := res.Hits[0].Fields
	return &search.Doc{Conv: str(f[fConv]), Seq: num(f[fSeq]), Sender: str(f[fSender]), TS: str(f[fTS]),
		Text: str(f[fText]), EditSeq: num(f[fEditSeq]), ExpiresAt: str(f[fExpiresAt])}, nil
}

// Search implements search.Index. The query is a conjunction of term
// queries only (each word of the text, the conversations as one
// disjunction), unscored and without term locations, so that Bleve
// answers it with its "unadorned" bitmap optimization: the postings of
// each segment ANDed and ORed as roaring bitmaps, no per-document scoring
// or location decoding. Hits sort by fKey, descending; a cursor is the
// fKey of the last hit of the page before (SearchAfter). Only the page's
// hits are then highlighted, from their stored text.
func (x *Index) Search(ctx context.Context, q search.Query) (search.Page, error) {
	var after string
	var below uint64 // legacy
	var err error
	if x.legacy {
		below, err = search.ParseSeqCursor(q.Cursor)
	} else {
		after, err = search.ParseCursor(q.Cursor)
	}
	if err != nil {
		return search.Page{}, err
	}
	if q.Text == "" || len(q.Convs) == 0 {
		return search.Page{}, nil
	}
	words := x.words(q.Text)
	if len(words) == 0 {
		return search.Page{}, nil
	}
	limit := search.Limit(q.Limit)
	parts := make([]query.Query, 0, len(words)+2)
	for w := range words {
		t := bleve.NewTermQuery(w)
		t.SetField(fText)
		parts = append(parts, t)
	}
	parts = append(parts, convFilter(q.Convs))
	if below > 0 {
		hi := float64(below)
		no := false
		r := bleve.NewNumericRangeInclusiveQuery(nil, &hi, nil, &no)
		r.SetField(fSeq)
		parts = append(parts, r)
	}
	// The newest hour first: when a window holds a page's worth of
	// hits, they are the page (every doc outside it sorts after them),
	// and far fewer candidates were sorted (each one's fKey is read from
	// a doc-value chunk decoded for it: the cost of a query with a common
	// word). Else one as wide as the first's hits say a page needs, if
	// it found any; then no window.
	var keep []*bsearch.DocumentMatch
	top, windowed := x.windowTop(after)
	span := firstWindow
	for windowed && span > 0 {
		r := bleve.NewTermRangeInclusiveQuery(hourOf(orderKey(uint64(top-int64(span)))), "", &[]bool{true}[0], nil)
		r.SetField(fHour)
		if keep, err = x.collect(ctx, bleve.NewConjunctionQuery(append(parts[:len(parts):len(parts)], r)...), after, limit+1); err != nil {
			return search.Page{}, err
		}
		if len(keep) == limit+1 {
			break
		}
		span = nextWindow(span, len(keep), limit+1, top)
	}
	if !windowed || len(keep) < limit+1 {
		if keep, err = x.collect(ctx, bleve.NewConjunctionQuery(parts...), after, limit+1); err != nil {
			return search.Page{}, err
		}
	}
	var p search.Page
	for i, h := range keep {
		if i == limit {
			last := &p.Hits[limit-1]
			if x.legacy {
				p.Cursor = search.SeqCursor(last.Seq)
			} else {
				p.Cursor = search.OrderKey(last.TS, last.Seq, last.Conv)
			}
			break
		}
		hit := search.Hit{Conv: str(h.Fields[fConv]), Seq: num(h.Fields[fSeq]), Sender: str(h.Fields[fSender]), TS: str(h.Fields[fTS])}
		if hl := search.Highlight(str(h.Fields[fText]), x.spans(str(h.Fields[fText]), words)); hl != "" {
			hit.Highlights = []string{hl}
		}
		p.Hits = append(p.Hits, hit)
	}
	return p, nil
}

// Expire implements search.Index: it finds the documents whose fExpires
// is at or before now, a thousand at a time, and deletes them.
func (x *Index) Expire(ctx context.Context, now time.Time) (int, error) {
	if x.legacy {
		return 0, nil // it holds no disappearing message
	}
	hi := float64(now.UnixMilli())
	yes := true
	r := bleve.NewNumericRangeInclusiveQuery(nil, &hi, nil, &yes)
	r.SetField(fExpires)
	n := 0
	for {
		req := bleve.NewSearchRequestOptions(r, 1000, 0, false)
		req.Score = "none"
		res, err := x.b.SearchInContext(ctx, req)
		if err != nil {
			return n, fmt.Errorf("search index expire: %w", err)
		}
		if len(res.Hits) == 0 {
			return n, nil
		}
		b := x.b.NewBatch()
		for _, h := range res.Hits {
			b.Delete(h.ID)
		}
		if err := x.b.Batch(b); err != nil {
			return n, fmt.Errorf("search index expire: %w", err)
		}
		n += len(res.Hits)
	}
}

// collect returns up to n hits of q after the fKey after, newest first,
// leaving out those whose expires_at has come (whether or not Expire
// removed them yet): a page short of them reads on past them, after the
// last hit read, by its sort key.
func (x *Index) collect(ctx context.Context, q query.Query, after string, n int) ([]*bsearch.DocumentMatch, error) {
	now := time.Now()
	var keep []*bsearch.DocumentMatch
	for {
		req := bleve.NewSearchRequestOptions(q, n-len(keep), 0, false)
		req.SortBy([]string{"-" + x.sort})
		if after != "" {
			req.SetSearchAfter([]string{after})
		}
		req.Fields = []string{fConv, fSeq, fSender, fTS, fText, fExpiresAt}
		req.Score = "none"
		res, err := x.b.SearchInContext(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		for _, h := range res.Hits {
			if !protocol.Expired(str(h.Fields[fExpiresAt]), now) {
				keep = append(keep, h)
			}
		}
		if len(keep) == n || len(res.Hits) < req.Size || x.legacy {
			return keep, nil
		}
		after = res.Hits[len(res.Hits)-1].Sort[0]
	}
}

// firstWindow is how far back from the newest possible hit (now, or the
// cursor's time) Search looks first.
const firstWindow = time.Hour

// nextWindow is the window after one of span that found got of the want
// hits: wide enough for want at the rate found, twice over, if that is
// at most a week back from top and got > 0; else 0 (no more windows:
// search everything).
func nextWindow(span time.Duration, got, want int, top int64) time.Duration {
	if got == 0 {
		return 0
	}
	next := span * time.Duration(2*want/got+1)
	if next > 7*24*time.Hour || top-int64(next) <= 0 {
		return 0
	}
	return next
}

// windowTop is the newest time (Unix nanoseconds) a hit after the cursor
// after may have, and whether the index has windows at all.
func (x *Index) windowTop(after string) (int64, bool) {
	if !x.windows {
		return 0, false
	}
	top := time.Now().UnixNano()
	if after != "" {
		if n, err := strconv.ParseUint(after[:16], 16, 64); err == nil {
			top = int64(n)
		}
	}
	return top, top > int64(firstWindow)
}

// hourOf is fHour of a doc whose fKey (or a key beginning with its 16 hex
// digits of Unix nanoseconds) is key.
func hourOf(key string) string {
	n, _ := strconv.ParseUint(key[:16], 16, 64)
	return orderKey(n / uint64(time.Hour))
}

// convFilter matches the documents of convs: one term query each, ORed.
// (Unscored, Bleve ORs their postings as bitmaps.)
func convFilter(convs []string) query.Query {
	if len(convs) == 1 {
		t := bleve.NewTermQuery(convs[0])
		t.SetField(fConv)
		return t
	}
	qs := make([]query.Query, len(convs))
	for i, c := range convs {
		t := bleve.NewTermQuery(c)
		t.SetField(fConv)
		qs[i] = t
	}
	return bleve.NewDisjunctionQuery(qs...)
}

// words returns the distinct terms the analyzer makes of text: what a
// message must all contain.
func (x *Index) words(text string) map[string]bool {
	out := map[string]bool{}
	for _, tok := range x.an.Analyze([]byte(text)) {
		out[string(tok.Term)] = true
	}
	return out
}

// spans are where text has one of words, by the same analyzer: the term
// locations Bleve would have stored, found for a page's hits only.
func (x *Index) spans(text string, words map[string]bool) []search.Span {
	var out []search.Span
	for _, tok := range x.an.Analyze([]byte(text)) {
		if words[string(tok.Term)] {
			out = append(out, search.Span{Start: tok.Start, End: tok.End})
		}
	}
	return out
}

// orderKey is seq as fOrder holds it: 16 hex digits, which sort as the
// numbers do.
func orderKey(seq uint64) string {
	const hex = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hex[seq&15]
		seq >>= 4
	}
	return string(b[:])
}

// ForceMerge merges the index's segments into one, which queries then
// read once instead of once per segment (a conversation filter looks each
// conversation up in every segment's dictionary). It returns when done.
func (x *Index) ForceMerge(ctx context.Context) error {
	adv, err := x.b.Advanced()
	if err != nil {
		return err
	}
	s, ok := adv.(*scorch.Scorch)
	if !ok {
		return fmt.Errorf("search index: not a scorch index (%T)", adv)
	}
	return s.ForceMerge(ctx, &mergeplan.SingleSegmentMergePlanOptions)
}

// Close implements search.Index.
func (x *Index) Close() error { return x.b.Close() }

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) uint64 {
	f, _ := v.(float64)
	if f < 0 || f > math.MaxUint64 {
		return 0
	}
	return uint64(f)
}
