package gateway

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// The fakes below implement the gateway's own interfaces in memory, so
// tests can set up any state in a line and look at what the gateway did.
// They keep the rules the gateway relies on (membership, owners, markers
// only moving forwards); the real parts are tested in their packages and
// together with the gateway in e2e.

// fakeDoc is a conversation document.
type fakeDoc struct {
	conv, kind, title, owner string
	members                  []string
}

func (d *fakeDoc) Protocol(membersInline int) *protocol.Conversation {
	c := &protocol.Conversation{Conv: d.conv, Kind: d.kind, Title: d.title, Owner: d.owner, MemberCount: len(d.members)}
	if len(d.members) <= membersInline {
		c.Members = d.SortedMembers()
	}
	return c
}

// Role: the owner is owner, other members plain members (the fakes have
// no admins; the group rules are tested in conversation and e2e).
func (d *fakeDoc) Role(uid string) string {
	switch {
	case !slices.Contains(d.members, uid):
		return ""
	case uid == d.owner:
		return protocol.RoleOwner
	}
	return protocol.RoleMember
}

// MayPost: the fakes have no read-only groups.
func (d *fakeDoc) MayPost(string) bool { return true }
func (d *fakeDoc) MessageTTL() int64   { return 0 }

func (d *fakeDoc) SortedMembers() []string {
	m := slices.Clone(d.members)
	slices.Sort(m)
	return m
}

// fakeConvs is Conversations and ReadMarkers.
type fakeConvs struct {
	mu         sync.Mutex
	docs       map[string]*fakeDoc
	index      map[string][]string // uid -> convs, may be stale like the real index
	markers    map[string]uint64   // conv/uid -> seq
	markWrites int                 // MarkRead calls
	fail       map[string]error    // conv -> error Get returns
	maxMembers int
	// memberGate, when set, stalls IsMember until it is closed or the
	// caller gives up: a member-key read that hangs.
	memberGate chan struct{}
	actors     []Actor // who asked for each change
	groups     int
	consent    fakeConsent // consent_fakes_test.go
	// deliveredWrites counts MarkDelivered calls.
	deliveredWrites int
}

func newFakeConvs() *fakeConvs {
	return &fakeConvs{docs: map[string]*fakeDoc{}, index: map[string][]string{}, markers: map[string]uint64{}, fail: map[string]error{}, maxMembers: 100}
}

// add puts a conversation in place, indexing its members.
func (f *fakeConvs) add(conv, kind, owner string, members ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.docs[conv] = &fakeDoc{conv: conv, kind: kind, owner: owner, members: members}
	for _, u := range members {
		f.index[u] = append(f.index[u], conv)
	}
}

// drop removes uid from conv's members but leaves the index stale.
func (f *fakeConvs) drop(conv, uid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.docs[conv]
	d.members = slices.DeleteFunc(slices.Clone(d.members), func(u string) bool { return u == uid })
}

func (f *fakeConvs) marker(conv, uid string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.markers[conv+"/"+uid]
}

func (f *fakeConvs) lastActor() Actor {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.actors) == 0 {
		return Actor{}
	}
	return f.actors[len(f.actors)-1]
}

func (f *fakeConvs) member(conv, uid string) (*fakeDoc, bool) {
	d := f.docs[conv]
	return d, d != nil && slices.Contains(d.members, uid)
}

func (f *fakeConvs) IsMember(ctx context.Context, conv, uid string) (bool, error) {
	f.mu.Lock()
	f.consent.count("IsMember")
	gate := f.memberGate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.member(conv, uid)
	return ok, nil
}

func (f *fakeConvs) Get(_ context.Context, conv, uid string) (Conversation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.consent.count("Get")
	if err := f.fail[conv]; err != nil {
		return nil, err
	}
	d, ok := f.member(conv, uid)
	if !ok {
		return nil, ErrForbidden
	}
	return &fakeDoc{conv: d.conv, kind: d.kind, title: d.title, owner: d.owner, members: slices.Clone(d.members)}, nil
}

func (f *fakeConvs) UserConversations(_ context.Context, uid string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.index[uid]), nil
}

func (f *fakeConvs) Shares(_ context.Context, a string, aConvs []string, b string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range aConvs {
		if d, ok := f.member(c, a); ok && slices.Contains(d.members, b) {
			return true, nil
		}
	}
	return false, nil
}

func (f *fakeConvs) CreateDirect(_ context.Context, by Actor, other string) (Conversation, error) {
	pair := []string{by.User, other}
	slices.Sort(pair)
	conv := "d_" + pair[0] + "_" + pair[1]
	f.mu.Lock()
	f.actors = append(f.actors, by)
	_, exists := f.docs[conv]
	f.mu.Unlock()
	if !exists {
		f.add(conv, protocol.ConversationDirect, "", by.User, other)
	}
	return f.Get(context.Background(), conv, by.User)
}

func (f *fakeConvs) CreateGroup(_ context.Context, by Actor, title string, others []string) (Conversation, error) {
	f.mu.Lock()
	f.actors = append(f.actors, by)
	if n := len(others) + 1; n > f.maxMembers {
		f.mu.Unlock()
		return nil, fmt.Errorf("%w: a group has at most %d members", ErrTooLarge, f.maxMembers)
	}
	f.groups++
	conv := fmt.Sprintf("g_%d", f.groups)
	f.mu.Unlock()
	f.add(conv, protocol.ConversationGroup, by.User, append([]string{by.User}, others...)...)
	f.mu.Lock()
	f.docs[conv].title = title
	f.mu.Unlock()
	return f.Get(context.Background(), conv, by.User)
}

func (f *fakeConvs) RemoveMember(_ context.Context, by Actor, conv, user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actors = append(f.actors, by)
	d, ok := f.member(conv, by.User)
	switch {
	case !ok:
		return ErrForbidden
	case d.owner != by.User && user != by.User:
		return fmt.Errorf("%w: only the owner may remove others", ErrForbidden)
	case !slices.Contains(d.members, user):
		return fmt.Errorf("%w: %s is not a member", ErrNotFound, user)
	}
	d.members = slices.DeleteFunc(d.members, func(u string) bool { return u == user })
	return nil
}

func (f *fakeConvs) Leave(ctx context.Context, by Actor, conv string) error {
	return f.RemoveMember(ctx, by, conv, by.User)
}

func (f *fakeConvs) ReadSeq(_ context.Context, conv, uid string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.markers[conv+"/"+uid], nil
}

func (f *fakeConvs) MarkRead(_ context.Context, conv, uid string, seq uint64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.markWrites++
	k := conv + "/" + uid
	if seq <= f.markers[k] {
		return false, nil
	}
	f.markers[k] = seq
	return true, nil
}

// MarkDelivered keeps delivered markers as "d/" + conv/uid in markers.
func (f *fakeConvs) MarkDelivered(_ context.Context, conv, uid string, seq uint64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deliveredWrites++
	k := "d/" + conv + "/" + uid
	if seq <= f.markers[k] {
		return false, nil
	}
	f.markers[k] = seq
	return true, nil
}

func (f *fakeConvs) Receipts(_ context.Context, conv string, users []string) ([]protocol.Receipt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]protocol.Receipt, len(users))
	for i, u := range users {
		r := f.markers[conv+"/"+u]
		out[i] = protocol.Receipt{User: u, Read: r, Delivered: max(r, f.markers["d/"+conv+"/"+u])}
	}
	return out, nil
}

// fakeMessages is Messages over messages the test puts in.
type fakeMessages struct {
	mu     sync.Mutex
	convs  map[string][]*protocol.Message // ascending by seq
	last   map[string]uint64              // overrides the last message's seq
	limits []int                          // the limits After and Before were asked for
	getErr error                          // when set, Get fails with it: the history API is down
}

func newFakeMessages() *fakeMessages {
	return &fakeMessages{convs: map[string][]*protocol.Message{}, last: map[string]uint64{}}
}

// put stores m in its conversation.
func (f *fakeMessages) put(m *protocol.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ms := append(f.convs[m.Conv], m)
	slices.SortFunc(ms, func(a, b *protocol.Message) int { return cmp.Compare(a.Seq, b.Seq) })
	f.convs[m.Conv] = ms
}

func (f *fakeMessages) setLast(conv string, seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last[conv] = seq
}

func (f *fakeMessages) lastLimit() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.limits[len(f.limits)-1]
}

func (f *fakeMessages) After(_ context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limits = append(f.limits, limit)
	var out []*protocol.Message
	for _, m := range f.convs[conv] {
		if m.Seq > after {
			out = append(out, m)
		}
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

func (f *fakeMessages) Before(_ context.Context, conv string, before uint64, limit int) ([]*protocol.Message, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limits = append(f.limits, limit)
	var out []*protocol.Message
	for _, m := range f.convs[conv] {
		if before == 0 || m.Seq < before {
			out = append(out, m)
		}
	}
	if len(out) > limit {
		return out[len(out)-limit:], true, nil
	}
	return out, false, nil
}

func (f *fakeMessages) Last(_ context.Context, conv string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if seq, ok := f.last[conv]; ok {
		return seq, nil
	}
	if ms := f.convs[conv]; len(ms) > 0 {
		return ms[len(ms)-1].Seq, nil
	}
	return 0, nil
}

func (f *fakeMessages) Get(_ context.Context, conv string, seq uint64) (*protocol.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.getErr != nil {
		return nil, f.getErr
	}
	for _, m := range f.convs[conv] {
		if m.Seq == seq {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%w: %s/%d", ErrNotFound, conv, seq)
}

func (f *fakeMessages) CountAfter(_ context.Context, conv string, after uint64, limit int) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n uint64
	for _, m := range f.convs[conv] {
		if m.Seq > after && m.Kind == protocol.KindMessage && n < uint64(limit) {
			n++
		}
	}
	return n, nil
}

// presenceCall is one Connected or Disconnected.
type presenceCall struct {
	connected            bool
	uid, session, device string
}

// fakePresence is Presence: it reports calls on a channel and answers
// queries from states.
type fakePresence struct {
	calls  chan presenceCall
	mu     sync.Mutex
	states map[string]PresenceState
}

func newFakePresence() *fakePresence {
	return &fakePresence{calls: make(chan presenceCall, 64), states: map[string]PresenceState{}}
}

func (f *fakePresence) Connected(_ context.Context, uid, session, device string) error {
	f.calls <- presenceCall{connected: true, uid: uid, session: session, device: device}
	return nil
}

func (f *fakePresence) Disconnected(_ context.Context, uid, session string) error {
	f.calls <- presenceCall{uid: uid, session: session}
	return nil
}

func (f *fakePresence) State(_ context.Context, uid string) (PresenceState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.states[uid], nil
}

func (f *fakePresence) set(uid string, st PresenceState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[uid] = st
}

// fakeDevices is Devices in memory; like the real one it refuses unknown
// platforms.
type fakeDevices struct {
	mu      sync.Mutex
	devices map[string][]fakeDevice
	mutes   map[string]fakeMute // uid/conv -> level and until
	now     time.Time
}

type fakeMute struct {
	level string
	until time.Time
}

type fakeDevice struct {
	Device
	token string
}

func newFakeDevices() *fakeDevices {
	return &fakeDevices{devices: map[string][]fakeDevice{}, mutes: map[string]fakeMute{}, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (f *fakeDevices) Register(_ context.Context, uid, platform, token string) (Device, error) {
	if platform != "apns" && platform != "fcm" && platform != "webpush" {
		return Device{}, fmt.Errorf("%w: platform %q is not one we push to", ErrBadRequest, platform)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.devices[uid] {
		if d.Platform == platform && d.token == token {
			return d.Device, nil
		}
	}
	d := fakeDevice{Device: Device{ID: fmt.Sprintf("dev%d", len(f.devices[uid])+1), Platform: platform, Added: f.now}, token: token}
	f.devices[uid] = append(f.devices[uid], d)
	return d.Device, nil
}

func (f *fakeDevices) Unregister(_ context.Context, uid, deviceID, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices[uid] = slices.DeleteFunc(f.devices[uid], func(d fakeDevice) bool {
		return (deviceID == "" || d.ID == deviceID) && (token == "" || d.token == token)
	})
	return nil
}

func (f *fakeDevices) List(_ context.Context, uid string) ([]Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Device
	for _, d := range f.devices[uid] {
		out = append(out, d.Device)
	}
	return out, nil
}

func (f *fakeDevices) Mute(_ context.Context, uid, conv, level string, until time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mutes[uid+"/"+conv] = fakeMute{level, until}
	return nil
}

// MuteLevel is the level stored last, MuteNone when that ended.
func (f *fakeDevices) MuteLevel(_ context.Context, uid, conv string) (string, error) {
	m, _ := f.mute(uid, conv)
	if m.level == "" || m.level == protocol.MuteNone || !m.until.IsZero() && !m.until.After(f.now) {
		return protocol.MuteNone, nil
	}
	return m.level, nil
}

func (f *fakeDevices) mute(uid, conv string) (fakeMute, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.mutes[uid+"/"+conv]
	return m, ok
}

var (
	_ Conversations = (*fakeConvs)(nil)
	_ ReadMarkers   = (*fakeConvs)(nil)
	_ Messages      = (*fakeMessages)(nil)
	_ Presence      = (*fakePresence)(nil)
	_ Devices       = (*fakeDevices)(nil)
)

func (f *fakeMessages) ThreadAfter(ctx context.Context, conv string, root, after uint64, limit int) ([]*protocol.Message, bool, error) {
	return f.inThread(conv, root, func(m *protocol.Message) bool { return m.Seq > after }, limit, false)
}

func (f *fakeMessages) ThreadBefore(ctx context.Context, conv string, root, before uint64, limit int) ([]*protocol.Message, bool, error) {
	return f.inThread(conv, root, func(m *protocol.Message) bool { return before == 0 || m.Seq < before }, limit, true)
}

// inThread returns the thread replies under root that match, the first
// (or, with newest, the last) limit of them.
func (f *fakeMessages) inThread(conv string, root uint64, match func(*protocol.Message) bool, limit int, newest bool) ([]*protocol.Message, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*protocol.Message
	for _, m := range f.convs[conv] {
		if m.Thread == root && m.Kind == protocol.KindMessage && match(m) {
			out = append(out, m)
		}
	}
	if len(out) <= limit {
		return out, false, nil
	}
	if newest {
		return out[len(out)-limit:], true, nil
	}
	return out[:limit], true, nil
}
