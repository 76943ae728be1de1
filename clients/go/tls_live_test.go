package herald_test

// The client's TLS options against a real Herald serving TLS that requires client
// certificates (mTLS), with a throwaway CA made here.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	herald "github.com/herald-webhooks/herald/clients/go"
	"github.com/herald-webhooks/herald/clients/go/heraldv1"
)

func TestLiveMutualTLS(t *testing.T) {
	if os.Getenv("HERALD_BIN") == "" {
		t.Skip("SKIPPED: HERALD_BIN is not set; the live test needs a Herald binary")
	}
	pki := newTestPKI(t)
	server := startHerald(t,
		"WEBHOOK_TLS_CERT="+pki.serverCert,
		"WEBHOOK_TLS_KEY="+pki.serverKey,
		"WEBHOOK_TLS_CLIENT_CA="+pki.caCert,
	)
	register := func(t *testing.T, client *herald.Client, id string) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), liveDeadline)
		defer cancel()
		endpoint, _, err := client.RegisterEndpoint(ctx, &heraldv1.RegisterEndpointRequest{
			EndpointId: id, Url: "http://127.0.0.1:9/hook", Disabled: true,
		})
		if err == nil && endpoint.GetId() != id {
			t.Fatalf("registered %q, want %q", endpoint.GetId(), id)
		}
		return err
	}

	t.Run("client certificate from files is accepted", func(t *testing.T) {
		client := tlsClient(t, server.grpcAddr,
			herald.WithTLSFiles(pki.caCert, pki.clientCert, pki.clientKey), herald.WithAPIKey(server.apiKey))
		if err := register(t, client, "tls-files"); err != nil {
			t.Fatalf("register over mTLS: %v", err)
		}
	})

	t.Run("client certificate from a tls.Config is accepted", func(t *testing.T) {
		cert, err := tls.LoadX509KeyPair(pki.clientCert, pki.clientKey)
		if err != nil {
			t.Fatal(err)
		}
		config := &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		client := tlsClient(t, server.grpcAddr, herald.WithTLS(config), herald.WithAPIKey(server.apiKey))
		if err := register(t, client, "tls-config"); err != nil {
			t.Fatalf("register over mTLS: %v", err)
		}
	})

	t.Run("the call still needs the API key", func(t *testing.T) {
		client := tlsClient(t, server.grpcAddr, herald.WithTLSFiles(pki.caCert, pki.clientCert, pki.clientKey))
		if err := register(t, client, "tls-no-key"); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("register without an API key: %v, want Unauthenticated", err)
		}
	})

	t.Run("without a client certificate the connection is refused", func(t *testing.T) {
		client := tlsClient(t, server.grpcAddr, herald.WithTLSFiles(pki.caCert, "", ""), herald.WithAPIKey(server.apiKey))
		start := time.Now()
		err := register(t, client, "tls-no-cert")
		if err == nil {
			t.Fatal("register without a client certificate succeeded")
		}
		// Refused by the server, not left to run out the deadline.
		if code := status.Code(err); code != codes.Unavailable {
			t.Fatalf("register without a client certificate: %v (after %s), want Unavailable", err, time.Since(start))
		}
		t.Logf("refused after %s: %v", time.Since(start), err)
	})
}

func tlsClient(t *testing.T, addr string, options ...herald.Option) *herald.Client {
	t.Helper()
	client, err := herald.New(addr, append(options, herald.WithTimeout(liveDeadline))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and localhost and
// a client certificate, as PEM files in the test's temporary directory.
type testPKI struct {
	caCert                string
	serverCert, serverKey string
	clientCert, clientKey string
	pool                  *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	serial := int64(0)
	issue := func(template *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		t.Helper()
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		template.SerialNumber = big.NewInt(serial)
		template.NotBefore = now.Add(-time.Hour)
		template.NotAfter = now.Add(time.Hour)
		if parent == nil { // self-signed
			parent, parentKey = template, key
		}
		der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert, key
	}
	write := func(name, blockType string, der []byte) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	writeKey := func(name string, key *ecdsa.PrivateKey) string {
		t.Helper()
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, "PRIVATE KEY", der)
	}

	ca, caKey := issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "Herald test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, nil)
	server, serverKey := issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey)
	client, clientKey := issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "herald-test-client"},
		DNSNames:              []string{"herald-test-client"},
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, caKey)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{
		caCert:     write("ca.pem", "CERTIFICATE", ca.Raw),
		serverCert: write("server.pem", "CERTIFICATE", server.Raw),
		serverKey:  writeKey("server-key.pem", serverKey),
		clientCert: write("client.pem", "CERTIFICATE", client.Raw),
		clientKey:  writeKey("client-key.pem", clientKey),
		pool:       pool,
	}
}
