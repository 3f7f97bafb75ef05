package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/pushnotify/apns"
	"github.com/natter-chat/natter/pushnotify/fcm"
	"github.com/natter-chat/natter/pushnotify/webpush"
)

// pushFlags declares the push provider flags on fs and returns the
// function that turns their values into an app.PushConfig after Parse.
// A provider is configured when its key file is given.
func pushFlags(fs *flag.FlagSet) func() (app.PushConfig, error) {
	apnsKey := fs.String("apns-key-file", "", "APNs: the AuthKey_<key id>.p8 file (token authentication); enables APNs")
	apnsKeyID := fs.String("apns-key-id", "", "APNs: the key id")
	apnsTeam := fs.String("apns-team-id", "", "APNs: the developer team id")
	apnsTopic := fs.String("apns-topic", "", "APNs: the app's bundle id")
	apnsEndpoint := fs.String("apns-endpoint", apns.Production, "APNs: endpoint (production, "+apns.Development+" for the sandbox)")
	fcmCreds := fs.String("fcm-credentials", "", "FCM: the service account JSON key file; enables FCM")
	fcmEndpoint := fs.String("fcm-endpoint", fcm.Endpoint, "FCM: endpoint")
	fcmTokenURL := fs.String("fcm-token-url", "", "FCM: OAuth2 token URL (default: the key file's token_uri)")
	vapidKey := fs.String("webpush-vapid-key-file", "", "Web Push: file holding the VAPID private key (base64url of the 32-byte P-256 scalar); enables Web Push")
	vapidSubject := fs.String("webpush-subject", "", "Web Push: VAPID contact, mailto: or https: URL")
	allowHosts := fs.String("webpush-allow-hosts", strings.Join(webpush.DefaultAllowHosts, ","),
		"Web Push: comma-separated push service hosts that subscriptions may point to (*.example.com for subdomains, * for any host); "+
			"endpoints on loopback, private, link-local or other non-public addresses are refused whatever this says")
	private := fs.Bool("push-private", false, "privacy mode: notifications carry no message text")
	window := fs.Duration("push-window", 2*time.Second, "coalescing window: messages of a conversation within it make one notification")
	return func() (app.PushConfig, error) {
		var pc app.PushConfig
		if *window <= 0 {
			return pc, errors.New("--push-window must be positive")
		}
		hosts, err := hostList(*allowHosts)
		if err != nil {
			return pc, err
		}
		pc.WebPushEndpoints = webpush.EndpointPolicy{AllowHosts: hosts}
		pc.Dispatcher.Private = *private
		pc.Dispatcher.Window = *window
		if *apnsKey != "" {
			key, err := os.ReadFile(*apnsKey)
			if err != nil {
				return pc, fmt.Errorf("--apns-key-file: %w", err)
			}
			if *apnsKeyID == "" || *apnsTeam == "" || *apnsTopic == "" {
				return pc, errors.New("APNs needs --apns-key-id, --apns-team-id and --apns-topic")
			}
			pc.APNs = &apns.Config{Endpoint: *apnsEndpoint, Topic: *apnsTopic, TeamID: *apnsTeam, KeyID: *apnsKeyID, Key: key}
		}
		if *fcmCreds != "" {
			creds, err := os.ReadFile(*fcmCreds)
			if err != nil {
				return pc, fmt.Errorf("--fcm-credentials: %w", err)
			}
			pc.FCM = &fcm.Config{Credentials: creds, Endpoint: *fcmEndpoint, TokenURL: *fcmTokenURL}
		}
		if *vapidKey != "" {
			key, err := os.ReadFile(*vapidKey)
			if err != nil {
				return pc, fmt.Errorf("--webpush-vapid-key-file: %w", err)
			}
			if *vapidSubject == "" {
				return pc, errors.New("--webpush-vapid-key-file needs --webpush-subject")
			}
			pc.WebPush = &webpush.Config{PrivateKey: strings.TrimSpace(string(key)), Subject: *vapidSubject}
		}
		return pc, nil
	}
}

// hostList parses --webpush-allow-hosts: names, "*.domain" or "*".
func hostList(s string) ([]string, error) {
	var hosts []string
	for _, h := range strings.Split(s, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		name := strings.TrimPrefix(h, "*.")
		if h != webpush.AnyPublicHost && (name == "" || strings.ContainsAny(name, "*/:@ ")) {
			return nil, fmt.Errorf("--webpush-allow-hosts: %q is not a host name, *.domain or *", h)
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		return nil, errors.New("--webpush-allow-hosts is empty: name the push services (the default lists the browsers')")
	}
	return hosts, nil
}
