// Package herald is a thin client for Herald's gRPC API, over the generated stubs in
// package heraldv1.
//
// Layout:
//
//   - client.go: New, the connection and its options (TLS, API key, tenant, deadlines,
//     keepalive).
//   - publish.go: Publish and PublishBatch, with JSON or raw payloads.
//   - endpoints.go: endpoint management; Endpoints pages through every endpoint.
//   - watch.go: Watch, the delivery status stream as an iterator that resumes from its
//     last cursor by itself.
//   - errors.go: Error, a failed call with its google.rpc details.
//
// Everything the wrapper does not cover is one call away on Client.RPC. Receivers verify
// webhooks with package webhookverify, which does not depend on gRPC.
package herald

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/herald-webhooks/herald/clients/go/heraldv1"
)

// Client calls one Herald deployment. It is safe for concurrent use; make one per
// process and Close it at shutdown.
type Client struct {
	conn *grpc.ClientConn
	// RPC is the generated stub on the same connection, with the same credentials, for
	// the calls this package does not wrap (analytics, redelivery, API keys, ...).
	RPC heraldv1.WebhookServiceClient
	// tenant fills every request's tenant_id that the caller left empty.
	tenant string
	// timeout bounds every unary call whose context has no deadline of its own.
	timeout time.Duration
	// backoff paces Watch's reconnections.
	backoff Backoff
}

// Option configures New.
type Option func(*settings) error

type settings struct {
	tls         *tls.Config
	apiKey      string
	tenant      string
	timeout     time.Duration
	keepalive   keepalive.ClientParameters
	backoff     Backoff
	dialOptions []grpc.DialOption
}

// DefaultTimeout bounds unary calls made with a context that has no deadline.
const DefaultTimeout = 10 * time.Second

// WithTLS connects over TLS with the given configuration. Without a TLS option the
// connection is plaintext (h2c), as for a sidecar or a loopback server.
func WithTLS(config *tls.Config) Option {
	return func(s *settings) error {
		s.tls = config.Clone()
		return nil
	}
}

// WithTLSFiles connects over TLS trusting the PEM CA bundle in caFile (the system roots
// when empty) and, when certFile and keyFile are set, presenting that client
// certificate.
func WithTLSFiles(caFile, certFile, keyFile string) Option {
	return func(s *settings) error {
		config := &tls.Config{MinVersion: tls.VersionTLS12}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return fmt.Errorf("reading CA bundle: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("no certificate in CA bundle %s", caFile)
			}
			config.RootCAs = pool
		}
		if certFile != "" || keyFile != "" {
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return fmt.Errorf("loading client certificate: %w", err)
			}
			config.Certificates = []tls.Certificate{cert}
		}
		s.tls = config
		return nil
	}
}

// WithAPIKey sends key as `authorization: Bearer <key>` on every call.
func WithAPIKey(key string) Option {
	return func(s *settings) error {
		if key == "" {
			return errors.New("empty API key")
		}
		s.apiKey = key
		return nil
	}
}

// WithTenant makes tenant the default of every request that names none.
func WithTenant(tenant string) Option {
	return func(s *settings) error {
		s.tenant = tenant
		return nil
	}
}

// WithTimeout bounds unary calls whose context has no deadline (DefaultTimeout
// otherwise). Watch is never bounded by it.
func WithTimeout(timeout time.Duration) Option {
	return func(s *settings) error {
		if timeout <= 0 {
			return fmt.Errorf("timeout %s is not positive", timeout)
		}
		s.timeout = timeout
		return nil
	}
}

// WithKeepalive pings the server after interval without activity and drops the
// connection when no answer comes within timeout. The defaults (30 s, 10 s) notice a
// dead peer behind a silent load balancer well before Watch's heartbeats would.
func WithKeepalive(interval, timeout time.Duration) Option {
	return func(s *settings) error {
		s.keepalive.Time = interval
		s.keepalive.Timeout = timeout
		return nil
	}
}

// WithWatchBackoff sets how Watch waits between reconnections.
func WithWatchBackoff(backoff Backoff) Option {
	return func(s *settings) error {
		if backoff.Initial <= 0 || backoff.Max < backoff.Initial {
			return fmt.Errorf("backoff %+v: want 0 < Initial <= Max", backoff)
		}
		s.backoff = backoff
		return nil
	}
}

// WithDialOptions passes options to grpc.NewClient as they are (interceptors, a
// custom dialer, ...).
func WithDialOptions(options ...grpc.DialOption) Option {
	return func(s *settings) error {
		s.dialOptions = append(s.dialOptions, options...)
		return nil
	}
}

// New prepares a client for the server at address (`host:port`, or any grpc-go
// target). It does not connect: the first call does, and failures surface there.
func New(address string, options ...Option) (*Client, error) {
	s := settings{
		timeout:   DefaultTimeout,
		keepalive: keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second},
		backoff:   DefaultBackoff,
	}
	for _, option := range options {
		if err := option(&s); err != nil {
			return nil, err
		}
	}
	transport := insecure.NewCredentials()
	if s.tls != nil {
		transport = credentials.NewTLS(s.tls)
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithKeepaliveParams(s.keepalive),
	}
	if s.apiKey != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearer{key: s.apiKey, secure: s.tls != nil}))
	}
	conn, err := grpc.NewClient(address, append(dial, s.dialOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("herald client for %s: %w", address, err)
	}
	return &Client{
		conn:    conn,
		RPC:     heraldv1.NewWebhookServiceClient(conn),
		tenant:  s.tenant,
		timeout: s.timeout,
		backoff: s.backoff,
	}, nil
}

// Close releases the connection; calls in progress fail.
func (c *Client) Close() error {
	return c.conn.Close()
}

// tenantOr returns the request's own tenant, else the client's default.
func (c *Client) tenantOr(tenant string) string {
	if tenant != "" {
		return tenant
	}
	return c.tenant
}

// unary gives ctx the client's default deadline when it has none.
func (c *Client) unary(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}

// bearer sends the API key. It is sent over plaintext only when the caller chose
// plaintext: a loopback server or a sidecar that terminates TLS.
type bearer struct {
	key    string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.key}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// String keeps the key out of logs.
func (b bearer) String() string { return "bearer(redacted)" }
