package app

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/natter-chat/natter/metrics"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/apns"
	"github.com/natter-chat/natter/pushnotify/fcm"
	"github.com/natter-chat/natter/pushnotify/webpush"
)

// PushConfig configures push notifications: the providers (nil means not
// configured) and the dispatcher (privacy, coalescing window, workers).
type PushConfig struct {
	APNs    *apns.Config
	FCM     *fcm.Config
	WebPush *webpush.Config
	// WebPushEndpoints says which Web Push endpoints register_device
	// accepts and the sender connects to; it replaces WebPush.Endpoints,
	// so that gateways without a VAPID key apply it too. The zero value
	// allows only the big browsers' push services on public addresses.
	WebPushEndpoints webpush.EndpointPolicy
	// Dispatcher tunes the dispatcher: Private, Window and the rest.
	Dispatcher pushnotify.DispatcherConfig
}

// Configured reports whether at least one provider is configured.
func (c PushConfig) Configured() bool {
	return c.APNs != nil || c.FCM != nil || c.WebPush != nil
}

// startPush runs the push dispatcher on a NATS connection of its own;
// without a configured provider, startUnsent instead.
func (a *App) startPush(ctx context.Context, _ *http.ServeMux) (*part, error) {
	pc := a.cfg.Push
	if !pc.Configured() {
		return a.startUnsent(ctx)
	}
	router := pushnotify.Router{}
	if pc.APNs != nil {
		c := *pc.APNs
		if c.Logger == nil {
			c.Logger = a.log
		}
		s, err := apns.New(c)
		if err != nil {
			return nil, fmt.Errorf("push: %w", err)
		}
		router[pushnotify.PlatformAPNs] = s
	}
	if pc.FCM != nil {
		c := *pc.FCM
		if c.Logger == nil {
			c.Logger = a.log
		}
		s, err := fcm.New(c)
		if err != nil {
			return nil, fmt.Errorf("push: %w", err)
		}
		router[pushnotify.PlatformFCM] = s
	}
	if pc.WebPush != nil {
		c := *pc.WebPush
		c.Endpoints = pc.WebPushEndpoints
		if c.Logger == nil {
			c.Logger = a.log
		}
		s, err := webpush.New(c)
		if err != nil {
			return nil, fmt.Errorf("push: %w", err)
		}
		router[pushnotify.PlatformWebPush] = s
	}
	_, js, err := a.connect(ctx, schema.RolePush, "natter-push")
	if err != nil {
		return nil, err
	}
	convs, err := a.conversations(ctx, js)
	if err != nil {
		return nil, err
	}
	pushKV, err := js.KeyValue(ctx, schema.BucketPush)
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	sentKV, err := js.KeyValue(ctx, schema.BucketPushSent)
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	presenceKV, err := js.KeyValue(ctx, schema.BucketPresence)
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	dcfg := pc.Dispatcher
	if dcfg.Logger == nil {
		dcfg.Logger = a.log
	}
	d, err := pushnotify.NewDispatcher(dcfg, pushnotify.DispatcherDeps{
		JS: js, Sender: router, Devices: pushnotify.NewStore(pushnotify.StoreConfig{}, pushKV),
		Presence: presenceKV, Sent: pushnotify.NewKVDedup(sentKV), Convs: convs, Blocks: convs,
	})
	if err != nil {
		return nil, err
	}
	a.push = d
	a.obs.reg.MustRegister(pushMetrics(d, slices.Sorted(maps.Keys(router))))
	return &part{name: "push dispatcher", run: d.Run}, nil
}

// startUnsent keeps the pushnotify consumer acknowledged while no
// provider is configured (pushnotify.Unsent), counted by
// natter_push_unsent_total.
func (a *App) startUnsent(ctx context.Context) (*part, error) {
	_, js, err := a.connect(ctx, schema.RolePush, "natter-push")
	if err != nil {
		return nil, err
	}
	u := pushnotify.NewUnsent(js, a.log)
	a.obs.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Name: "push_unsent_total",
		Help: "CHAT messages and membership events the pushnotify consumer acknowledged without notifying anyone: no push provider is configured.",
	}, func() float64 { return float64(u.Acked()) }))
	return &part{name: "push unsent", run: u.Run}, nil
}
