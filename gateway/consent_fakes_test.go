package gateway

import (
	"context"
	"slices"
)

// The fake conversations keep no consent state: every member has
// accepted, nothing is hidden and everyone accepts adds. The consent rules
// are tested against the real store in conversation/ and e2e/.

func (d *fakeDoc) StateFor(string) string { return "" }

func (f *fakeConvs) Membership(ctx context.Context, conv, uid string) (bool, bool, error) {
	ok, err := f.IsMember(ctx, conv, uid)
	return ok, false, err
}

func (f *fakeConvs) View(ctx context.Context, conv, uid string) (Conversation, error) {
	return f.Get(ctx, conv, uid)
}

func (f *fakeConvs) UserList(ctx context.Context, uid string) ([]string, map[string]uint64, error) {
	ids, err := f.UserConversations(ctx, uid)
	return ids, nil, err
}

func (f *fakeConvs) AddOrInvite(_ context.Context, by Actor, conv string, users []string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actors = append(f.actors, by)
	d, ok := f.member(conv, by.User)
	if !ok {
		return nil, ErrForbidden
	}
	for _, u := range users {
		if !slices.Contains(d.members, u) {
			d.members = append(d.members, u)
			f.index[u] = append(f.index[u], conv)
		}
	}
	return nil, nil
}

func (f *fakeConvs) Accept(ctx context.Context, by Actor, conv string) (Conversation, error) {
	return f.Get(ctx, conv, by.User)
}

func (f *fakeConvs) Decline(context.Context, Actor, string) error { return ErrForbidden }

func (f *fakeConvs) Hide(context.Context, string, string, uint64) error { return nil }

func (f *fakeConvs) AddPolicy(context.Context, string) (string, error) { return "everyone", nil }

func (f *fakeConvs) SetAddPolicy(_ context.Context, _, policy string) (string, error) {
	return policy, nil
}

var _ Consent = (*fakeConvs)(nil)
