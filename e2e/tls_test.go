package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/services"
)

// testCA writes a CA and a certificate for 127.0.0.1 signed by it; it
// returns the files and a pool trusting the CA.
func testCA(t *testing.T) (caFile, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "natter test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", keyDER), pool
}

// TLS on both listeners: HTTPS/wss for clients, tls:// for NATS.
func TestTLS(t *testing.T) {
	caFile, cert, key, pool := testCA(t)
	e := start(t, func(c *app.Config) {
		c.TLSCert, c.TLSKey = cert, key
		c.Embedded.TLSCert, c.Embedded.TLSKey = cert, key
	})
	if !strings.HasPrefix(e.app.WebSocketURL(), "wss://") || !strings.HasPrefix(e.app.NATS().OperatorURL(), "tls://") {
		t.Fatalf("URLs %s, %s", e.app.WebSocketURL(), e.app.NATS().OperatorURL())
	}
	ctx := ctxT(t)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	alice, err := client.Dial(ctx, e.app.WebSocketURL(), client.Options{Token: token(t, "alice"), HTTPClient: hc})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer alice.Close()
	// Without trusting the CA the handshake fails.
	if _, err := client.Dial(ctx, e.app.WebSocketURL(), client.Options{Token: token(t, "alice")}); err == nil {
		t.Fatal("a client that does not trust the certificate connected")
	}
	// NATS: plain text is refused, TLS with the CA works.
	plain := strings.Replace(e.app.NATS().OperatorURL(), "tls://", "nats://", 1)
	if nc, err := nats.Connect(plain, nats.Timeout(2*time.Second)); err == nil {
		if _, err := nc.Request("$JS.API.INFO", nil, 2*time.Second); err == nil {
			t.Fatal("the NATS port answered without TLS")
		}
		nc.Close()
	}
	nc, err := nats.Connect(e.app.NATS().OperatorURL(), nats.RootCAs(caFile))
	if err != nil {
		t.Fatalf("NATS over TLS: %v", err)
	}
	nc.Close()
	// A second gateway reaches the NATS over TLS as the gateway user.
	g2 := startWith(t, app.Config{
		Roles: app.Roles{Gateway: true}, HTTPAddr: "127.0.0.1:0",
		NATSURL: e.app.NATS().RoleURL(natsrv.RoleGateway), NATSRootCA: caFile,
		Auth: auth.Config{Secret: secret}, Logger: testLogger(),
	})
	bob := g2.dial(t, "bob")
	conv, err := bob.CreateDirect(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, conv.Conv, "", text("over TLS all the way")); err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, alice); m.Sender != "bob" {
		t.Fatalf("alice got %+v", m)
	}
	// A service user added while the server runs connects over TLS.
	op, err := nats.Connect(e.app.NATS().OperatorURL(), nats.RootCAs(caFile))
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	js, _ := jetstream.New(op)
	reg, err := services.Open(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := natsrv.NewPassword()
	h, _ := services.HashPassword(pw)
	if err := reg.Put(ctx, &services.Service{Name: "alerts", Senders: []string{"alert-bot"}, PasswordHash: h}); err != nil {
		t.Fatal(err)
	}
	svcURL := natsrv.ServiceURLs([]string{strings.TrimPrefix(e.app.NATS().ClientURL(), "tls://")}, "alerts", pw, true)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		nc, err := nats.Connect(svcURL, nats.RootCAs(caFile), nats.NoReconnect())
		if err == nil {
			nc.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service over TLS: %v", err)
		}
	}
	// TLS still holds.
	if nc, err := nats.Connect(plain, nats.Timeout(2*time.Second)); err == nil {
		if _, err := nc.Request("$JS.API.INFO", nil, 2*time.Second); err == nil {
			t.Fatal("the NATS port answered without TLS after a service user was added")
		}
		nc.Close()
	}
}
