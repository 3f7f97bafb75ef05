package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// errInjected is the failure faults inject.
var errInjected = errors.New("injected fault")

// faults is a set of one-shot rules applied to the writes a Store makes
// through faultJS: a rule matches a write (op is put, create, update,
// delete or publish; key is the KV key or the subject), fails it (a crash
// half-way) or runs another request just before it (an interleaving).
type faults struct {
	mu    sync.Mutex
	rules []*rule
}

type rule struct {
	match func(op, key string) bool
	// fail makes the next fail matching writes fail.
	fail int
	// before runs once, before the first matching write goes ahead.
	before func()
}

func (f *faults) add(r *rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
}

func (f *faults) hit(op, key string) error {
	f.mu.Lock()
	var run func()
	for i, r := range f.rules {
		if !r.match(op, key) {
			continue
		}
		if r.before != nil {
			run, r.before = r.before, nil
		} else if r.fail > 0 {
			r.fail--
		} else {
			continue
		}
		if r.fail == 0 && r.before == nil {
			f.rules = slices.Delete(f.rules, i, i+1)
		}
		f.mu.Unlock()
		if run != nil {
			run()
			return nil
		}
		return fmt.Errorf("%w: %s %s", errInjected, op, key)
	}
	f.mu.Unlock()
	return nil
}

// writes matches the writes of ops (a |-separated list) to key, where a
// "*" in key stands for any text without a dot.
func writes(ops, key string) func(op, key string) bool {
	pre, post, wild := strings.Cut(key, "*")
	return func(op, k string) bool {
		if !slices.Contains(strings.Split(ops, "|"), op) {
			return false
		}
		if !wild {
			return k == key
		}
		mid, ok := strings.CutPrefix(k, pre)
		if !ok {
			return false
		}
		mid, ok = strings.CutSuffix(mid, post)
		return ok && !strings.Contains(mid, ".")
	}
}

type faultJS struct {
	jetstream.JetStream
	f *faults
}

func (j faultJS) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	kv, err := j.JetStream.KeyValue(ctx, bucket)
	if err != nil {
		return nil, err
	}
	return faultKV{kv, j.f}, nil
}

func (j faultJS) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if err := j.f.hit("publish", m.Subject); err != nil {
		return nil, err
	}
	return j.JetStream.PublishMsg(ctx, m, opts...)
}

type faultKV struct {
	jetstream.KeyValue
	f *faults
}

func (kv faultKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := kv.f.hit("put", key); err != nil {
		return 0, err
	}
	return kv.KeyValue.Put(ctx, key, value)
}

func (kv faultKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if err := kv.f.hit("create", key); err != nil {
		return 0, err
	}
	return kv.KeyValue.Create(ctx, key, value, opts...)
}

func (kv faultKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if err := kv.f.hit("update", key); err != nil {
		return 0, err
	}
	return kv.KeyValue.Update(ctx, key, value, rev)
}

func (kv faultKV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	if err := kv.f.hit("delete", key); err != nil {
		return err
	}
	return kv.KeyValue.Delete(ctx, key, opts...)
}

// faultStore returns a Store whose writes go through faults, another
// Store on the same JetStream without them (another process), and that
// JetStream.
func faultStore(t *testing.T) (*Store, *faults, *Store, jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	f := &faults{}
	s, err := New(ctx, Config{}, faultJS{js, f})
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(ctx, Config{}, js)
	if err != nil {
		t.Fatal(err)
	}
	return s, f, other, js
}

// events returns every membership event of conv in the CHAT stream.
func events(t *testing.T, js jetstream.JetStream, conv string) []Event {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	var out []Event
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(schema.LayoutOf(st.CachedInfo().Config).StoredMember(conv)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var ev Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
		seq = m.Sequence + 1
	}
}

// checkAgree fails unless, for each of users, the member key and the
// index entry exist exactly when conv's document lists the user.
func checkAgree(t *testing.T, s *Store, conv string, users ...string) {
	t.Helper()
	ctx := context.Background()
	d, err := s.Get(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		key, err := s.IsMember(ctx, conv, u)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := s.UserConversations(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if listed := d.IsMember(u); key != listed || slices.Contains(idx, conv) != listed {
			t.Errorf("%s: listed %v, member key %v, index %v", u, listed, key, idx)
		}
	}
}

// convOf returns the one conversation in uid's index.
func convOf(t *testing.T, s *Store, uid string) string {
	t.Helper()
	convs, err := s.UserConversations(context.Background(), uid)
	if err != nil || len(convs) != 1 {
		t.Fatalf("index of %s: %v, %v", uid, convs, err)
	}
	return convs[0]
}

var (
	alice = Actor{User: "alice", Session: "a1"}
	bob   = Actor{User: "bob", Session: "b1"}
	carol = Actor{User: "carol", Session: "c1"}
)

// A request that stops half-way (one write fails, as in a crash, or
// JetStream refuses the event) and is then retried ends with the document,
// the member keys, the indexes and the events agreeing: each change
// announced exactly once.
func TestRetryFinishesHalfDoneChange(t *testing.T) {
	ctx := context.Background()
	group := func(t *testing.T, s *Store, members ...string) string {
		g, err := s.CreateGroup(ctx, alice, "t", members)
		if err != nil {
			t.Fatal(err)
		}
		return g.Conv
	}
	add := func(s *Store, conv string) error {
		_, _, err := s.AddMembers(ctx, bob, conv, []string{"carol"})
		return err
	}
	remove := func(s *Store, conv string) error {
		_, err := s.RemoveMember(ctx, alice, conv, "carol")
		return err
	}
	leave := func(s *Store, conv string) error {
		_, err := s.Leave(ctx, alice, conv)
		return err
	}
	// invitedGroup is a group of alice and bob that carol, who accepts
	// adds from nobody, is invited to: removing her withdraws it.
	invitedGroup := func(t *testing.T, s *Store) string {
		if _, err := s.SetAddPolicy(ctx, "carol", protocol.AddPolicyNobody); err != nil {
			t.Fatal(err)
		}
		conv := group(t, s, "bob")
		if _, _, invited, err := s.AddOrInvite(ctx, alice, conv, []string{"carol"}); err != nil || len(invited) != 1 {
			t.Fatalf("invite: %v %v", invited, err)
		}
		return conv
	}
	direct := func(s *Store, _ string) error {
		_, _, err := s.CreateDirect(ctx, alice, "bob")
		return err
	}
	cases := []struct {
		name string
		// setup returns the conversation ("" for one do creates).
		setup func(t *testing.T, s *Store) string
		// fault is the write that fails, "*" standing for conv.
		ops, key string
		times    int
		do       func(s *Store, conv string) error
		// retry repeats the request; nil: the request is not
		// retryable, and a member's listing must finish it.
		retry   func(s *Store, conv string) error
		members []string
		owner   string
		// want are the events after setup's, as action:users.
		want []string
	}{
		{"add: a member key not written", func(t *testing.T, s *Store) string { return group(t, s, "bob") },
			"put|create", "m.*.carol", 1, add, add, []string{"alice", "bob", "carol"}, "alice", []string{"added:carol"}},
		{"add: the event refused", func(t *testing.T, s *Store) string { return group(t, s, "bob") },
			"publish", "chat.member.*", 5, add, add, []string{"alice", "bob", "carol"}, "alice", []string{"added:carol"}},
		{"add: an index not written", func(t *testing.T, s *Store) string { return group(t, s, "bob") },
			"create|update", "u.carol", 1, add, add, []string{"alice", "bob", "carol"}, "alice", []string{"added:carol"}},
		{"direct create: a member key not written", func(*testing.T, *Store) string { return "" },
			"put|create", "m.*.bob", 1, direct, direct, []string{"alice", "bob"}, "", []string{"created:alice,bob"}},
		{"direct create: the event refused", func(*testing.T, *Store) string { return "" },
			"publish", "chat.member.*", 5, direct, direct, []string{"alice", "bob"}, "", []string{"created:alice,bob"}},
		{"group create: a member key not written", func(*testing.T, *Store) string { return "" },
			"put|create", "m.*.bob", 1, func(s *Store, _ string) error {
				_, err := s.CreateGroup(ctx, alice, "t", []string{"bob"})
				return err
			}, nil, []string{"alice", "bob"}, "alice", []string{"created:alice,bob"}},
		{"remove: the document not written", func(t *testing.T, s *Store) string { return group(t, s, "bob", "carol") },
			"update", "c.*", 1, remove, remove, []string{"alice", "bob"}, "alice", []string{"removed:carol"}},
		{"remove: the event refused", func(t *testing.T, s *Store) string { return group(t, s, "bob", "carol") },
			"publish", "chat.member.*", 5, remove, remove, []string{"alice", "bob"}, "alice", []string{"removed:carol"}},
		{"remove: the index not cleared", func(t *testing.T, s *Store) string { return group(t, s, "bob", "carol") },
			"update", "u.carol", 1, remove, remove, []string{"alice", "bob"}, "alice", []string{"removed:carol"}},
		{"withdraw: the event refused", invitedGroup,
			"publish", "chat.member.*", 5, remove, remove, []string{"alice", "bob"}, "alice", []string{"withdrawn:carol"}},
		{"withdraw: the index not cleared", invitedGroup,
			"update", "u.carol", 1, remove, remove, []string{"alice", "bob"}, "alice", []string{"withdrawn:carol"}},
		{"the owner leaves: the event refused", func(t *testing.T, s *Store) string { return group(t, s, "bob", "carol") },
			"publish", "chat.member.*", 5, leave, leave, []string{"bob", "carol"}, "bob", []string{"removed:alice"}},
		{"the owner leaves: the index not cleared", func(t *testing.T, s *Store) string { return group(t, s, "bob", "carol") },
			"update", "u.alice", 1, leave, leave, []string{"bob", "carol"}, "bob", []string{"removed:alice"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, f, other, js := faultStore(t)
			conv := tc.setup(t, s)
			var before int
			if conv != "" {
				before = len(events(t, js, conv))
			}
			key := tc.key
			if conv != "" {
				key = strings.Replace(key, "*", conv, 1)
			}
			f.add(&rule{match: writes(tc.ops, key), fail: tc.times})
			first := tc.do(s, conv)
			if conv == "" {
				conv = convOf(t, other, "alice")
			}
			// Whatever the first attempt answered, what it left must not
			// let in anyone the document does not list.
			for _, u := range []string{"alice", "bob", "carol"} {
				d, err := other.Get(ctx, conv)
				if err != nil {
					t.Fatal(err)
				}
				if key, err := other.IsMember(ctx, conv, u); err != nil || (key && !d.IsMember(u)) {
					t.Errorf("after the first attempt (%v): %s has a member key (%v), listed %v", first, u, err, d.IsMember(u))
				}
			}
			if tc.retry != nil {
				if err := tc.retry(s, conv); err != nil && (first != nil || !errors.Is(err, ErrNotFound)) {
					t.Fatalf("retry after %v: %v", first, err)
				}
			} else {
				// Nothing can name the group in a retry; a member's
				// listing reads it and finishes it.
				if first == nil {
					t.Fatal("the create did not fail")
				}
				for _, u := range tc.members {
					if _, err := s.GetForMember(ctx, conv, u); err != nil {
						t.Fatalf("%s lists %s: %v", u, conv, err)
					}
				}
			}
			d, err := other.Get(ctx, conv)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(d.Members, tc.members) || d.Owner != tc.owner {
				t.Errorf("document: members %v owner %q, want %v %q", d.Members, d.Owner, tc.members, tc.owner)
			}
			checkAgree(t, other, conv, "alice", "bob", "carol")
			var got []string
			for _, ev := range events(t, js, conv)[before:] {
				got = append(got, ev.Action+":"+strings.Join(ev.Users, ","))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("events %v, want %v", got, tc.want)
			}
		})
	}
}

// State a deployed system may hold from before these repairs (a member
// key the document does not back, a member without a key) is repaired by
// the requests that read the document: remove_member deletes a stray key
// even though the document no longer lists the user, and a member's
// listing fixes its own key either way.
func TestRepairsBrokenState(t *testing.T) {
	ctx := context.Background()
	s, _, _, js := faultStore(t)
	g, err := s.CreateGroup(ctx, alice, "t", []string{"bob"})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, schema.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	// carol and dave hold keys of a group that does not list them; bob's
	// key is missing although it does.
	for _, k := range []string{"m." + g.Conv + ".carol", "m." + g.Conv + ".dave"} {
		if _, err := kv.Put(ctx, k, []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete(ctx, "m."+g.Conv+".bob"); err != nil {
		t.Fatal(err)
	}
	before := len(events(t, js, g.Conv))

	if _, err := s.RemoveMember(ctx, alice, g.Conv, "carol"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing carol: %v, want ErrNotFound", err)
	}
	if _, err := s.GetForMember(ctx, g.Conv, "dave"); !errors.Is(err, ErrForbidden) {
		t.Errorf("dave reads: %v, want ErrForbidden", err)
	}
	if _, err := s.GetForMember(ctx, g.Conv, "bob"); err != nil {
		t.Errorf("bob reads: %v", err)
	}
	checkAgree(t, s, g.Conv, "alice", "bob", "carol", "dave")
	if evs := events(t, js, g.Conv); len(evs) != before {
		t.Errorf("repairs announced %+v", evs[before:])
	}
}

// An add and a remove of one user interleaved at their most dangerous
// points, each through its own process, end with the member key and the
// index agreeing with the document.
func TestAddRemoveInterleavings(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		members []string // of the group alice creates
		// The request through the faulty store, and the write of it
		// before which the other process runs the other request.
		ops, key string
		do       func(s *Store, conv string) error
		other    func(s *Store, conv string) error
		listed   bool // whether carol ends a member
	}{
		{"the add's member key is written after the remove", []string{"bob"},
			"put|create", "m.*.carol",
			func(s *Store, conv string) error {
				_, _, err := s.AddMembers(ctx, bob, conv, []string{"carol"})
				return err
			},
			func(s *Store, conv string) error {
				_, err := s.RemoveMember(ctx, alice, conv, "carol")
				return err
			}, false},
		{"the remove's index is cleared after a new add", []string{"bob", "carol"},
			"update", "u.carol",
			func(s *Store, conv string) error {
				_, err := s.RemoveMember(ctx, alice, conv, "carol")
				return err
			},
			func(s *Store, conv string) error {
				_, _, err := s.AddMembers(ctx, bob, conv, []string{"carol"})
				return err
			}, true},
		{"a leave's index is cleared after a new add", []string{"bob", "carol"},
			"update", "u.carol",
			func(s *Store, conv string) error {
				_, err := s.Leave(ctx, carol, conv)
				return err
			},
			func(s *Store, conv string) error {
				_, _, err := s.AddMembers(ctx, bob, conv, []string{"carol"})
				return err
			}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, f, other, _ := faultStore(t)
			g, err := other.CreateGroup(ctx, alice, "t", tc.members)
			if err != nil {
				t.Fatal(err)
			}
			var otherErr error
			f.add(&rule{
				match:  writes(tc.ops, strings.Replace(tc.key, "*", g.Conv, 1)),
				before: func() { otherErr = tc.other(other, g.Conv) },
			})
			if err := tc.do(s, g.Conv); err != nil {
				t.Fatal(err)
			}
			if otherErr != nil {
				t.Fatalf("the other request: %v", otherErr)
			}
			d, err := other.Get(ctx, g.Conv)
			if err != nil {
				t.Fatal(err)
			}
			if d.IsMember("carol") != tc.listed {
				t.Fatalf("carol listed %v, want %v", !tc.listed, tc.listed)
			}
			checkAgree(t, other, g.Conv, "alice", "bob", "carol")
		})
	}
}

// Adds, removes and leaves of one user racing from several processes,
// many times over: once all have returned, the member key exists exactly
// when the document lists the user, and so does the index entry.
func TestAddRemoveRaces(t *testing.T) {
	ctx := context.Background()
	s, _, _, js := faultStore(t)
	procs := []*Store{s}
	for range 3 {
		p, err := New(ctx, Config{}, js)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	ops := []func(s *Store, conv string) error{
		func(s *Store, conv string) error {
			_, _, err := s.AddMembers(ctx, bob, conv, []string{"carol"})
			return err
		},
		func(s *Store, conv string) error {
			_, err := s.RemoveMember(ctx, alice, conv, "carol")
			return err
		},
		func(s *Store, conv string) error {
			_, err := s.Leave(ctx, carol, conv)
			return err
		},
		func(s *Store, conv string) error {
			_, _, err := s.AddMembers(ctx, alice, conv, []string{"carol"})
			return err
		},
	}
	for round := range 30 {
		g, err := s.CreateGroup(ctx, alice, "t", []string{"bob", "carol"})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i, op := range ops {
			wg.Go(func() {
				// Each op runs twice, once after the others may have.
				for range 2 {
					err := op(procs[(i+round)%len(procs)], g.Conv)
					if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrForbidden) {
						t.Errorf("round %d op %d: %v", round, i, err)
					}
				}
			})
		}
		wg.Wait()
		checkAgree(t, s, g.Conv, "alice", "bob", "carol")
		if t.Failed() {
			t.Fatalf("round %d", round)
		}
	}
}
