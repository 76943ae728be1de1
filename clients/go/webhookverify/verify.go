// Package webhookverify checks Standard Webhooks signatures on the receiving side.
//
// It owns the receiver's half of the signing scheme Herald uses: the signed content is
// `{webhook-id}.{webhook-timestamp}.{body}`, the key the base64 part of the endpoint's
// `whsec_` secret, and every `v1,<base64 HMAC-SHA256>` in the `webhook-signature`
// header is a candidate (a rotated endpoint sends one per live secret). It imports
// nothing of gRPC, so a receiving service can use it alone.
package webhookverify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The three ways a request can fail verification; test with errors.Is.
var (
	// ErrMalformed: a webhook header is missing, or the timestamp is not an integer.
	ErrMalformed = errors.New("webhook headers malformed")
	// ErrStale: the timestamp is further than the tolerance from now (a replay, or a
	// clock far off).
	ErrStale = errors.New("webhook timestamp outside the tolerance")
	// ErrNoMatch: no v1 signature in the header matches the body under this secret.
	ErrNoMatch = errors.New("no webhook signature matches")
	// ErrSecret: the secret itself is not a `whsec_` base64 key; a configuration fault
	// of the receiver, not of the request.
	ErrSecret = errors.New("webhook secret invalid")
)

// DefaultTolerance is how far the timestamp may be from the receiver's clock, as the
// Standard Webhooks reference libraries allow.
const DefaultTolerance = 5 * time.Minute

// The headers Herald sends with every webhook.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Verify checks that body, with its headers, was signed with secret no more than
// tolerance away from the current time.
//
// Errors: ErrMalformed, ErrStale, ErrNoMatch or ErrSecret, wrapped with what was wrong.
func Verify(secret string, headers http.Header, body []byte, tolerance time.Duration) error {
	return VerifyAt(secret, headers, body, tolerance, time.Now())
}

// VerifyAt is Verify with the receiver's clock given: for tests, and for receivers that
// check a request they stored earlier against the time it arrived.
//
// Errors: as Verify.
func VerifyAt(secret string, headers http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := decodeSecret(secret)
	if err != nil {
		return err
	}
	id, err := header(headers, HeaderID)
	if err != nil {
		return err
	}
	rawTimestamp, err := header(headers, HeaderTimestamp)
	if err != nil {
		return err
	}
	signatures, err := header(headers, HeaderSignature)
	if err != nil {
		return err
	}
	timestamp, err := strconv.ParseInt(rawTimestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not an integer", ErrMalformed, HeaderTimestamp, rawTimestamp)
	}
	skew := now.Unix() - timestamp
	if skew > int64(tolerance/time.Second) || -skew > int64(tolerance/time.Second) {
		return fmt.Errorf("%w: signed at %d, %d s from now, tolerance %s",
			ErrStale, timestamp, skew, tolerance)
	}

	expected := sign(key, id, rawTimestamp, body)
	for candidate := range strings.FieldsSeq(signatures) {
		version, encoded, found := strings.Cut(candidate, ",")
		if !found || version != "v1" {
			continue
		}
		given, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			continue
		}
		// hmac.Equal compares in constant time: a mismatch reveals nothing of where.
		if hmac.Equal(given, expected) {
			return nil
		}
	}
	return fmt.Errorf("%w (message %s)", ErrNoMatch, id)
}

// Sign returns the `v1,<base64>` signature of body as Herald sends it: for receivers'
// own tests.
//
// Errors: ErrSecret when secret is not a `whsec_` base64 key.
func Sign(secret, id string, timestamp int64, body []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	mac := sign(key, id, strconv.FormatInt(timestamp, 10), body)
	return "v1," + base64.StdEncoding.EncodeToString(mac), nil
}

func sign(key []byte, id, timestamp string, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return mac.Sum(nil)
}

func decodeSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("%w: expected whsec_ followed by base64", ErrSecret)
	}
	return key, nil
}

func header(headers http.Header, name string) (string, error) {
	value := headers.Get(name)
	if value == "" {
		return "", fmt.Errorf("%w: %s header missing", ErrMalformed, name)
	}
	return value, nil
}
