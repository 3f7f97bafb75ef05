package main

import (
	"io"
	"testing"
	"time"
)

func TestServeJWTFlags(t *testing.T) {
	tests := []struct {
		name                  string
		args                  []string
		leeway                time.Duration
		jwks, audience, issue string
	}{
		{"defaults", []string{"--jwt-secret", strongSecret}, 30 * time.Second, "", "", ""},
		{"all set", []string{"--jwt-jwks", "keys.json", "--jwt-leeway", "5s", "--jwt-audience", "natter", "--jwt-issuer", "https://id.example"}, 5 * time.Second, "keys.json", "natter", "https://id.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NATTER_JWT_SECRET", "")
			cfg, err := serveConfig(append(tt.args, "--data", t.TempDir()), io.Discard, "serve")
			if err != nil {
				t.Fatal(err)
			}
			a := cfg.Auth
			if a.Leeway != tt.leeway || a.JWKSFile != tt.jwks || a.Audience != tt.audience || a.Issuer != tt.issue || a.Logger == nil {
				t.Fatalf("Auth = %+v", a)
			}
		})
	}
}
