// Package pushtest plays the push providers in tests: local TLS servers
// for APNs, FCM (with Google's OAuth2 token endpoint) and a Web Push
// service, each checking the real wire format (HTTP/2 and ES256 provider
// tokens; the JWT-bearer grant and v1 messages; VAPID and RFC 8291
// encryption, decrypted as a browser would), recording what it accepted
// and answering from a script of replies.
//
// A request that breaks the wire format fails the test (tb.Errorf) and is
// refused the way the provider would refuse it.
package pushtest

import (
	"net/http"
	"sync"
	"testing"
)

// Reply is one scripted answer. When a server's script is empty it
// answers success.
type Reply struct {
	// Status is the HTTP status.
	Status int
	// Reason is APNs's {"reason"}; Body is the raw body (FCM, Web Push).
	Reason, Body string
	// Header is set on the answer, e.g. Retry-After.
	Header map[string]string
}

// script is a queue of replies shared by the fakes.
type script struct {
	mu   sync.Mutex
	next []Reply
}

// Script queues replies for the next requests that pass the checks.
func (s *script) Script(r ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = append(s.next, r...)
}

// pop returns the next scripted reply, or ok.
func (s *script) pop(ok int) Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.next) == 0 {
		return Reply{Status: ok}
	}
	r := s.next[0]
	s.next = s.next[1:]
	return r
}

func writeReply(w http.ResponseWriter, r Reply) {
	for k, v := range r.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(r.Status)
	if r.Body != "" {
		_, _ = w.Write([]byte(r.Body))
	}
}

// reject fails the test and answers status.
func reject(tb testing.TB, w http.ResponseWriter, provider string, status int, why string) {
	tb.Errorf("fake %s rejects the request: %d %s", provider, status, why)
	http.Error(w, why, status)
}
