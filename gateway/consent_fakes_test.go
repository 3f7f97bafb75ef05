package gateway

import (
	"context"
	"slices"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// The fake conversations keep only which members have yet to accept a
// request, and count the reads the gateway makes: nothing is hidden and
// everyone accepts adds. The consent rules are tested against the real
// store in conversation/ and e2e/.

// fakeConsent is the consent state of fakeConvs, under its mutex.
type fakeConsent struct {
	pending map[string]bool // conv/uid -> has not accepted
	calls   map[string]int  // method -> calls
}

func (c *fakeConsent) count(method string) {
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[method]++
}

// request marks uid as not having accepted conv.
func (f *fakeConvs) request(conv, uid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.consent.pending == nil {
		f.consent.pending = map[string]bool{}
	}
	f.consent.pending[conv+"/"+uid] = true
}

// calls returns how often method was called.
func (f *fakeConvs) calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.consent.calls[method]
}

func (d *fakeDoc) StateFor(string) string { return "" }

func (f *fakeConvs) Membership(_ context.Context, conv, uid string) (bool, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.consent.count("Membership")
	_, ok := f.member(conv, uid)
	return ok, ok && f.consent.pending[conv+"/"+uid], nil
}

// MemberView is the fake's membership as of seq 0: the fakes store no
// membership event, so that is what the stream has too.
func (f *fakeConvs) MemberView(_ context.Context, conv, uid string) (MemberView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.consent.count("MemberView")
	_, ok := f.member(conv, uid)
	// The subject has no event: the fakes store none.
	return MemberView{Subject: schema.Member(conv), Member: ok, Pending: ok && f.consent.pending[conv+"/"+uid]}, nil
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
	f.mu.Lock()
	f.consent.count("Accept")
	delete(f.consent.pending, conv+"/"+by.User)
	f.mu.Unlock()
	return f.Get(ctx, conv, by.User)
}

func (f *fakeConvs) Decline(context.Context, Actor, string) error { return ErrForbidden }

func (f *fakeConvs) Hide(context.Context, string, string, uint64) error { return nil }

func (f *fakeConvs) AddPolicy(context.Context, string) (string, error) { return "everyone", nil }

// IsContact: a direct conversation of a and b, both members, neither with
// a request open.
func (f *fakeConvs) IsContact(_ context.Context, a, b string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for conv, d := range f.docs {
		if d.kind == protocol.ConversationDirect && slices.Contains(d.members, a) && slices.Contains(d.members, b) &&
			!f.consent.pending[conv+"/"+a] && !f.consent.pending[conv+"/"+b] {
			return true, nil
		}
	}
	return false, nil
}

func (f *fakeConvs) SetAddPolicy(_ context.Context, _, policy string) (string, error) {
	return policy, nil
}

var _ Consent = (*fakeConvs)(nil)
