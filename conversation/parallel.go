package conversation

import (
	"context"
	"sync"
)

// forEach runs fn for every item with at most n at once and returns the
// first error; the others stop early once one failed.
func forEach(ctx context.Context, items []string, n int, fn func(context.Context, string) error) error {
	if len(items) == 1 {
		return fn(ctx, items[0])
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, it); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}
