package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel"

	"github.com/natter-chat/natter/app"
)

// tracingConfig decides from --otlp-endpoint, --trace-sample and the
// standard OpenTelemetry environment whether spans are exported. Tracing
// is off unless asked for: the flag, an OTLP endpoint in the environment,
// or OTEL_TRACES_EXPORTER=otlp turns it on; OTEL_TRACES_EXPORTER=none or
// OTEL_SDK_DISABLED=true keeps it off unless the flag is given.
func tracingConfig(endpoint string, ratio float64, getenv func(string) string) (app.TracingConfig, error) {
	if ratio < 0 || ratio > 1 {
		return app.TracingConfig{}, errors.New("--trace-sample must be between 0 and 1")
	}
	c := app.TracingConfig{Endpoint: strings.TrimSpace(endpoint), SampleRatio: ratio}
	if c.Endpoint != "" {
		if _, err := app.TracesURL(c.Endpoint); err != nil {
			return c, fmt.Errorf("--otlp-endpoint: %w", err)
		}
		c.Export = true
	} else if !strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
		case "none":
		case "otlp":
			c.Export = true
		case "":
			c.Export = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
		default:
			return c, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: natter exports traces with otlp or none", exp)
		}
	}
	if !c.Export {
		return c, nil
	}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := getenv(v); p != "" && p != "http/protobuf" {
			return c, fmt.Errorf("%s=%s: natter exports OTLP over HTTP only (http/protobuf, port 4318)", v, p)
		}
	}
	return c, nil
}

// logTraceErrors sends the OpenTelemetry SDK's errors (exports that
// failed: the collector is down) to the process's log instead of the
// standard logger. The SDK has one handler, a process global, so it is
// set here in main and nowhere else.
func logTraceErrors(log *slog.Logger) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("trace export failed", "err", err)
	}))
}
