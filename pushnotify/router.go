package pushnotify

import (
	"context"
	"fmt"
)

// Router is a Sender that hands each notification to the Sender registered
// for its Platform, e.g. Router{PlatformAPNs: apnsClient, PlatformFCM:
// fcmClient}. A platform without a Sender (not configured) is a permanent
// error for that notification.
type Router map[string]Sender

var _ Sender = Router(nil)

// Send implements Sender.
func (r Router) Send(ctx context.Context, n *Notification) error {
	s, ok := r[n.Platform]
	if !ok || s == nil {
		return fmt.Errorf("pushnotify: no sender for platform %q", n.Platform)
	}
	return s.Send(ctx, n)
}
