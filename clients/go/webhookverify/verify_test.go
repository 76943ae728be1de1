package webhookverify_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-webhooks/herald/clients/go/webhookverify"
)

// The shared vectors every client and the server's signer must agree with.
type vector struct {
	Name             string            `json:"name"`
	Secret           string            `json:"secret"`
	Headers          map[string]string `json:"headers"`
	BodyBase64       string            `json:"body_base64"`
	Now              int64             `json:"now"`
	ToleranceSeconds int64             `json:"tolerance_seconds"`
	Valid            bool              `json:"valid"`
	Error            *string           `json:"error"`
}

var errorKinds = map[string]error{
	"stale":     webhookverify.ErrStale,
	"no_match":  webhookverify.ErrNoMatch,
	"malformed": webhookverify.ErrMalformed,
}

func TestConformanceVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "conformance", "signatures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range file.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			body, err := base64.StdEncoding.DecodeString(v.BodyBase64)
			if err != nil {
				t.Fatal(err)
			}
			headers := http.Header{}
			for name, value := range v.Headers {
				headers.Set(name, value)
			}
			err = webhookverify.VerifyAt(v.Secret, headers, body,
				time.Duration(v.ToleranceSeconds)*time.Second, time.Unix(v.Now, 0))
			switch {
			case v.Valid && err != nil:
				t.Fatalf("want valid, got %v", err)
			case !v.Valid && v.Error == nil:
				t.Fatal("vector invalid without an error kind")
			case !v.Valid:
				want, ok := errorKinds[*v.Error]
				if !ok {
					t.Fatalf("unknown error kind %q", *v.Error)
				}
				if !errors.Is(err, want) {
					t.Fatalf("want %v, got %v", want, err)
				}
			}
		})
	}
}

func TestSignThenVerify(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	now := time.Unix(1_700_000_000, 0)
	signature, err := webhookverify.Sign(secret, "msg_1", now.Unix(), []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	headers := http.Header{}
	headers.Set("Webhook-Id", "msg_1")
	headers.Set("Webhook-Timestamp", "1700000000")
	headers.Set("Webhook-Signature", signature)
	if err := webhookverify.VerifyAt(secret, headers, []byte("hello"), time.Minute, now); err != nil {
		t.Fatal(err)
	}
}

func TestBadSecretIsTheReceiversFault(t *testing.T) {
	err := webhookverify.Verify("whsec_!!!", http.Header{}, nil, time.Minute)
	if !errors.Is(err, webhookverify.ErrSecret) {
		t.Fatalf("want ErrSecret, got %v", err)
	}
}
