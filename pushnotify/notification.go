// Package pushnotify sends push notifications to the devices of members who
// are offline: the provider-neutral Notification, the Sender interface the
// providers implement (subpackages apns, fcm and webpush), the error
// classes every provider maps its responses to, Retry with backoff, the
// per-conversation Coalescer and the Deduper that keeps a restarted
// dispatcher from notifying a device twice.
//
// The dispatcher that reads the CHAT stream is built on these parts:
//
//	message -> Coalescer.Add -> (window closes) -> Batch
//	Batch -> for each device: Batch.Notification -> Deduper.Seen -> Retry(Sender)
//	ErrInvalidToken -> remove the device; other errors -> dead letter
package pushnotify

import (
	"context"
	"time"
)

// Platforms, as registered by clients with register_device.
const (
	PlatformAPNs    = "apns"
	PlatformFCM     = "fcm"
	PlatformWebPush = "webpush"
)

// Urgency values of Notification.Urgency.
const (
	UrgencyHigh   = "high"   // deliver now, wake the device (the default)
	UrgencyNormal = "normal" // deliver when convenient for the battery
)

// Notification is one push to one device. Providers map the fields to their
// own wire formats; fields a provider has no place for are ignored.
type Notification struct {
	// Platform is one of the Platform constants; it picks the Sender.
	Platform string
	// Token is the device token (APNs, FCM) or the Web Push subscription
	// JSON ({"endpoint":...,"keys":{"p256dh":...,"auth":...}}).
	Token string
	// Title and Body are the visible text. With Private set, Body must not
	// carry message text (Batch.Notification takes care of that).
	Title, Body string
	// Conv is the conversation; devices group notifications by it (APNs
	// thread-id).
	Conv string
	// Seq is the newest message seq the notification covers.
	Seq uint64
	// Count is how many messages were coalesced into this notification.
	Count int
	// CollapseID replaces an earlier notification with the same id still
	// shown or queued (APNs apns-collapse-id, FCM collapse_key, Web Push
	// Topic). Providers shorten or hash it to fit their limits.
	CollapseID string
	// Badge, when not nil, sets the app icon's badge (APNs).
	Badge *int
	// Data is passed to the app as custom key/value data.
	Data map[string]string
	// TTL is how long the provider should keep trying to deliver; 0 means
	// the provider's default.
	TTL time.Duration
	// Urgency is UrgencyHigh (the default when empty) or UrgencyNormal.
	Urgency string
	// Private says the notification carries no message content; APNs gets
	// mutable-content so an app extension can fetch the text itself.
	Private bool
}

// Sender delivers a notification to one device through one provider.
// Errors are classified with errors.Is(err, ErrInvalidToken) (forget the
// device) and errors.Is(err, ErrRetryable) (try again later, see
// RetryError); anything else is permanent for this notification.
type Sender interface {
	Send(ctx context.Context, n *Notification) error
}
