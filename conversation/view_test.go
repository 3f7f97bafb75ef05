package conversation

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
)

// publishAs publishes a message to conv expecting the membership event
// of v, as the gateway does with a view.
func publishAs(ctx context.Context, js jetstream.JetStream, conv string, v MemberView) error {
	m := nats.NewMsg(schema.Msg(conv))
	m.Data = []byte(`{"sender":"bob","client_id":"x","ts":"t","body":{}}`)
	m.Header.Set(schema.HeaderExpectedLastSubjectSeq, strconv.FormatUint(v.Seq, 10))
	m.Header.Set(schema.HeaderExpectedLastSubjectSeqSubject, v.Subject)
	_, err := js.PublishMsg(ctx, m)
	return err
}

// A view is read seq first, then the document: a remove that lands
// between the two reads gives a view that either refuses the member or
// carries a seq the remove's event made stale. Read the other way round,
// the view would pair the document from before the remove with the seq
// of the remove's event, and the removed member's publish would pass.
func TestMemberViewOrder(t *testing.T) {
	s, js := store(t, Config{})
	ctx := context.Background()
	d, err := s.CreateGroup(ctx, Actor{User: "alice"}, "g", []string{"bob"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.MemberView(ctx, d.Conv, "bob")
	if err != nil {
		t.Fatal(err)
	}
	_, created := lastEvent(t, js, d.Conv)
	if !v.Member || v.Pending || v.Seq != created || created == 0 {
		t.Fatalf("view of a member %+v, want member at the created event's seq %d", v, created)
	}
	if err := publishAs(ctx, js, d.Conv, v); err != nil {
		t.Fatalf("a current view was refused: %v", err)
	}

	viewBetweenReads = func() {
		viewBetweenReads = nil
		if _, err := s.RemoveMember(ctx, Actor{User: "alice"}, d.Conv, "bob"); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { viewBetweenReads = nil })
	v, err = s.MemberView(ctx, d.Conv, "bob")
	if err != nil {
		t.Fatal(err)
	}
	_, removed := lastEvent(t, js, d.Conv)
	if removed <= created {
		t.Fatalf("the remove stored no event (last %d, created %d)", removed, created)
	}
	err = publishAs(ctx, js, d.Conv, v)
	if v.Member && err == nil {
		t.Fatalf("view %+v read around a remove let the removed member publish", v)
	}
	var apiErr *jetstream.APIError
	if v.Member && (!errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence) {
		t.Fatalf("publish with a stale view: %v, want wrong last sequence", err)
	}
	// Read again, the view is current and refuses bob.
	if v, err = s.MemberView(ctx, d.Conv, "bob"); err != nil || v.Member || v.Seq != removed {
		t.Fatalf("view after the remove %+v, %v; want no member at %d", v, err, removed)
	}
}

func TestMemberViewStates(t *testing.T) {
	s, _ := store(t, Config{})
	ctx := context.Background()
	if v, err := s.MemberView(ctx, "nope", "bob"); err != nil || v.Member || v.Pending || v.Seq != 0 {
		t.Fatalf("view of a missing conversation %+v, %v", v, err)
	}
	d, _, err := s.CreateDirect(ctx, Actor{User: "alice"}, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.MemberView(ctx, d.Conv, "bob"); err != nil || !v.Member || !v.Pending {
		t.Fatalf("view of a request's recipient %+v, %v; want a pending member", v, err)
	}
	if v, err := s.MemberView(ctx, d.Conv, "alice"); err != nil || !v.Member || v.Pending {
		t.Fatalf("view of the requester %+v, %v; want a member", v, err)
	}
	if err := s.Decline(ctx, Actor{User: "bob"}, d.Conv); err != nil {
		t.Fatal(err)
	}
	if v, err := s.MemberView(ctx, d.Conv, "bob"); err != nil || v.Member {
		t.Fatalf("view after declining %+v, %v; want no member", v, err)
	}
}
