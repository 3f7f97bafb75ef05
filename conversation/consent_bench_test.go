package conversation

import (
	"context"
	"testing"
)

// The send path's membership check, before (IsMember) and with the
// request state (Membership): one member-key read each.
func BenchmarkMembershipCheck(b *testing.B) {
	s, _ := store(b, Config{})
	ctx := context.Background()
	d, _, err := s.CreateDirect(ctx, Actor{User: "mallory"}, "alice")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("IsMember", func(b *testing.B) {
		for b.Loop() {
			if ok, err := s.IsMember(ctx, d.Conv, "alice"); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("Membership", func(b *testing.B) {
		for b.Loop() {
			if ok, pending, err := s.Membership(ctx, d.Conv, "alice"); err != nil || !ok || !pending {
				b.Fatal(ok, pending, err)
			}
		}
	})
}
