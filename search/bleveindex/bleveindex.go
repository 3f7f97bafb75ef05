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

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/natter-chat/natter/search"
)

// Config says where the index lives.
type Config struct {
	// Dir is the index's directory, created on first use.
	Dir string
}

// Index is a Bleve index of messages.
type Index struct {
	b bleve.Index
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
		return &Index{b: b}, nil
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Dir), 0o755); err != nil {
		return nil, err
	}
	m, err := indexMapping()
	if err != nil {
		return nil, err
	}
	b, err := bleve.New(cfg.Dir, m)
	if err != nil {
		return nil, fmt.Errorf("create search index %s: %w", cfg.Dir, err)
	}
	return &Index{b: b}, nil
}

// indexMapping analyzes text by Unicode word boundaries, lower-cased, with
// no stop words (as OpenSearch's standard analyzer): "the" is findable.
func indexMapping() (mapping.IndexMapping, error) {
	im := bleve.NewIndexMapping()
	if err := im.AddCustomAnalyzer(analyzer, map[string]any{
		"type": custom.Name, "tokenizer": unicode.Name, "token_filters": []string{lowercase.Name},
	}); err != nil {
		return nil, err
	}
	im.DefaultAnalyzer = analyzer
	dm := bleve.NewDocumentStaticMapping()
	text := bleve.NewTextFieldMapping()
	text.Analyzer = analyzer
	text.IncludeTermVectors = true // term locations: the highlights
	text.DocValues = false
	dm.AddFieldMappingsAt(fText, text)
	for _, f := range []string{fConv, fSender, fTS} {
		kw := bleve.NewKeywordFieldMapping()
		kw.IncludeTermVectors = false
		dm.AddFieldMappingsAt(f, kw)
	}
	for _, f := range []string{fSeq, fEditSeq} {
		dm.AddFieldMappingsAt(f, bleve.NewNumericFieldMapping())
	}
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
		if err := b.Index(d.Key().ID(), map[string]any{
			fConv: d.Conv, fSeq: float64(d.Seq), fSender: d.Sender, fTS: d.TS, fText: d.Text, fEditSeq: float64(d.EditSeq),
		}); err != nil {
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
		Text: str(f[fText]), EditSeq: num(f[fEditSeq])}, nil
}

// Search implements search.Index.
func (x *Index) Search(ctx context.Context, q search.Query) (search.Page, error) {
	below, err := search.ParseCursor(q.Cursor)
	if err != nil {
		return search.Page{}, err
	}
	if q.Text == "" || len(q.Convs) == 0 {
		return search.Page{}, nil
	}
	limit := search.Limit(q.Limit)
	match := bleve.NewMatchQuery(q.Text)
	match.SetField(fText)
	match.Analyzer = analyzer
	match.SetOperator(query.MatchQueryOperatorAnd)
	convs := make([]query.Query, len(q.Convs))
	for i, c := range q.Convs {
		t := bleve.NewTermQuery(c)
		t.SetField(fConv)
		convs[i] = t
	}
	parts := []query.Query{match, bleve.NewDisjunctionQuery(convs...)}
	if below > 0 {
		hi := float64(below)
		no := false
		r := bleve.NewNumericRangeInclusiveQuery(nil, &hi, nil, &no)
		r.SetField(fSeq)
		parts = append(parts, r)
	}
	req := bleve.NewSearchRequestOptions(bleve.NewConjunctionQuery(parts...), limit+1, 0, false)
	req.SortBy([]string{"-" + fSeq})
	req.Fields = []string{fConv, fSeq, fSender, fTS, fText}
	req.IncludeLocations = true
	req.Score = "none"
	res, err := x.b.SearchInContext(ctx, req)
	if err != nil {
		return search.Page{}, fmt.Errorf("search: %w", err)
	}
	var p search.Page
	for i, h := range res.Hits {
		if i == limit {
			p.Cursor = search.Cursor(p.Hits[limit-1].Seq)
			break
		}
		text := str(h.Fields[fText])
		var spans []search.Span
		for _, locs := range h.Locations[fText] {
			for _, l := range locs {
				spans = append(spans, search.Span{Start: int(l.Start), End: int(l.End)})
			}
		}
		hit := search.Hit{Conv: str(h.Fields[fConv]), Seq: num(h.Fields[fSeq]), Sender: str(h.Fields[fSender]), TS: str(h.Fields[fTS])}
		if hl := search.Highlight(text, spans); hl != "" {
			hit.Highlights = []string{hl}
		}
		p.Hits = append(p.Hits, hit)
	}
	return p, nil
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
