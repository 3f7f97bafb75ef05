package app

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsListener: /metrics and /readyz are on the operator listener
// only; the client port answers /healthz and nothing of them. Without
// MetricsAddr nothing serves them.
func TestMetricsListener(t *testing.T) {
	for _, metricsAddr := range []string{"127.0.0.1:0", ""} {
		cfg := testConfig(t, Roles{Gateway: true})
		cfg.MetricsAddr = metricsAddr
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		a, err := Start(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		client := "http://" + a.HTTPAddr()
		for _, path := range []string{"/metrics", "/readyz"} {
			if code, _ := httpGet(t, client+path); code != http.StatusNotFound {
				t.Errorf("client port %s = %d, want 404", path, code)
			}
		}
		if code, _ := httpGet(t, client+"/healthz"); code != http.StatusOK {
			t.Errorf("client port /healthz = %d", code)
		}
		if metricsAddr == "" {
			if a.MetricsAddr() != "" {
				t.Errorf("MetricsAddr() = %q with no metrics listener", a.MetricsAddr())
			}
		} else {
			ops := "http://" + a.MetricsAddr()
			if code, body := httpGet(t, ops+"/readyz"); code != http.StatusOK {
				t.Errorf("metrics /readyz = %d %s", code, body)
			}
			code, body := httpGet(t, ops+"/metrics")
			if code != http.StatusOK {
				t.Errorf("metrics /metrics = %d", code)
			}
			// The gateway's counters, the loss-signalling ones included.
			for _, name := range []string{"natter_gateway_frames_in_total", "natter_gateway_jetstream_publish_errors_total",
				"natter_gateway_jetstream_publish_retries_total", "natter_gateway_pushes_dropped_total", "natter_gateway_notices_dropped_total"} {
				if !strings.Contains(body, "\n"+name+" ") {
					t.Errorf("metrics /metrics has no %s", name)
				}
			}
			if code, _ := httpGet(t, ops+"/v1/ws"); code != http.StatusNotFound {
				t.Errorf("metrics listener /v1/ws = %d, want 404", code)
			}
		}
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := a.Shutdown(sctx); err != nil {
			t.Error(err)
		}
		scancel()
	}
}
