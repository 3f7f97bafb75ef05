// Package webhook delivers the events of services that are not on NATS:
// for every service with a webhook (services.Webhook) it pulls the
// service's consumer on SVC_EVENTS and POSTs each event, signed with
// HMAC-SHA256 (Sign), retrying with backoff, and moves an event that
// keeps failing to the SVC_WEBHOOK_DLQ stream with the reason. Webhook
// URLs follow the same SSRF rules as Web Push endpoints, by the same code
// (webpush.EndpointPolicy).
package webhook
