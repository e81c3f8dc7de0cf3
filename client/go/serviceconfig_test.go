package sessiontoken

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"sessiontoken/internal/pb"
)

// The shared service config is read as the other clients read it.
func TestSharedServiceConfig(t *testing.T) {
	sc, err := ParseServiceConfig(pb.ServiceConfigJSON)
	if err != nil {
		t.Fatal(err)
	}
	sign := sc.Policy("/sessiontoken.v1.SessionTokens/Sign")
	if sign.Timeout != 2*time.Second || sign.Retry == nil {
		t.Fatalf("Sign: %+v", sign)
	}
	r := sign.Retry
	if r.MaxAttempts != 5 || !r.RetryableCodes[codes.Unavailable] || !r.RetryableCodes[codes.Canceled] ||
		r.RetryableCodes[codes.DeadlineExceeded] {
		t.Errorf("Sign retry policy: %+v", r)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, time.Second, time.Second}
	for i, w := range want {
		if got := r.Backoff(i + 1); got != w {
			t.Errorf("backoff before retry %d: %v, want %v", i+1, got, w)
		}
	}
	if p := sc.Policy("/sessiontoken.v1.KeyAdmin/ListKeys"); p.Timeout != 10*time.Second || p.Retry == nil {
		t.Errorf("ListKeys: %+v", p)
	}
	// Keyring changes are never repeated: a retried Rotate could add two keys.
	if p := sc.Policy("/sessiontoken.v1.KeyAdmin/Rotate"); p.Timeout != 10*time.Second || p.Retry != nil {
		t.Errorf("Rotate: %+v", p)
	}
	if p := sc.Policy("/other.Service/Call"); p.Timeout != 0 || p.Retry != nil {
		t.Errorf("unlisted method: %+v", p)
	}
}

func TestServiceConfigErrors(t *testing.T) {
	for name, text := range map[string]string{
		"not JSON":     "{",
		"bad timeout":  `{"methodConfig":[{"name":[{"service":"s"}],"timeout":"2m"}]}`,
		"bad code":     `{"methodConfig":[{"name":[{"service":"s"}],"retryPolicy":{"maxAttempts":2,"initialBackoff":"1s","maxBackoff":"1s","backoffMultiplier":2,"retryableStatusCodes":["NOPE"]}}]}`,
		"one attempt":  `{"methodConfig":[{"name":[{"service":"s"}],"retryPolicy":{"maxAttempts":1,"initialBackoff":"1s","maxBackoff":"1s","backoffMultiplier":2}}]}`,
		"zero backoff": `{"methodConfig":[{"name":[{"service":"s"}],"retryPolicy":{"maxAttempts":3,"initialBackoff":"0s","maxBackoff":"1s","backoffMultiplier":2}}]}`,
	} {
		if _, err := ParseServiceConfig(text); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
