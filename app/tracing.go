package app

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracingConfig turns OpenTelemetry tracing on (package tracing says what
// is recorded). Off by default: without Provider or Export no part is given
// a tracer, so no span is built and no trace header stored.
type TracingConfig struct {
	// Export sends spans with OTLP over HTTP (protobuf) to Endpoint, or,
	// when that is empty, where the OTEL_EXPORTER_OTLP_TRACES_ENDPOINT /
	// OTEL_EXPORTER_OTLP_ENDPOINT environment says (the exporter reads
	// the other OTEL_EXPORTER_OTLP_* variables, headers and TLS, itself).
	Export bool
	// Endpoint is the collector's base URL (http://collector:4318): spans
	// go to its /v1/traces, or to the URL as given when it has a path.
	Endpoint string
	// SampleRatio is the share of traces recorded where no parent decided
	// (the parent's decision is followed); 0 is taken as 1.
	SampleRatio float64
	// Provider, when set, is used instead (tests: an SDK provider with an
	// in-memory exporter); the caller shuts it down.
	Provider trace.TracerProvider
}

// tracerProvider returns the provider the parts' tracers come from, and
// its shutdown (flushing what is buffered), nil when the caller owns it.
// It is nil when tracing is off.
func (c TracingConfig) tracerProvider(ctx context.Context, roles Roles) (trace.TracerProvider, func(context.Context) error, error) {
	if c.Provider != nil {
		return c.Provider, nil, nil
	}
	if !c.Export {
		return nil, nil, nil
	}
	var opts []otlptracehttp.Option
	if c.Endpoint != "" {
		u, err := TracesURL(c.Endpoint)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(u))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, read last, win.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "natter"), attribute.String("natter.roles", roles.String())),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		return nil, nil, fmt.Errorf("trace resource: %w", err)
	}
	ratio := c.SampleRatio
	if ratio <= 0 {
		ratio = 1
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))))
	return tp, tp.Shutdown, nil
}

// TracesURL turns a collector's base URL into its traces endpoint, as the
// OTEL_EXPORTER_OTLP_ENDPOINT variable is read: /v1/traces is added to a
// URL without a path; one with a path is taken as it is.
func TracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("OTLP endpoint %q: want http(s)://host:port", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// tracer returns the named tracer of tp, nil (tracing off) without one.
func tracer(tp trace.TracerProvider, part string) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer("github.com/natter-chat/natter/" + part)
}

// String lists the roles that are on, comma separated.
func (r Roles) String() string {
	var on []string
	for _, x := range []struct {
		name string
		on   bool
	}{{"gateway", r.Gateway}, {"presence", r.Presence}, {"history", r.History}, {"pushnotify", r.Push}} {
		if x.on {
			on = append(on, x.name)
		}
	}
	return strings.Join(on, ",")
}
