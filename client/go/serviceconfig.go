package sessiontoken

// The shared deadline and retry policy (proto/sessiontoken/v1/service_config.json), applied
// by a unary interceptor. grpc-go 1.33 (Debian 12) retries from a service config only when
// GRPC_GO_RETRY=on is in the environment, so the client does what the C++, Python and Node
// channels do itself: the method's timeout when the caller's context has no deadline, and
// retries of the listed status codes with jittered exponential backoff, within that deadline.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RetryPolicy is a methodConfig's retryPolicy.
type RetryPolicy struct {
	MaxAttempts       int
	InitialBackoff    time.Duration
	MaxBackoff        time.Duration
	BackoffMultiplier float64
	RetryableCodes    map[codes.Code]bool
}

// MethodPolicy is what the service config says about one method.
type MethodPolicy struct {
	Timeout time.Duration // 0: none
	Retry   *RetryPolicy  // nil: never retried (keyring changes such as Rotate)
}

// ServiceConfig maps "/package.Service/Method" and "/package.Service/" to their policy.
type ServiceConfig struct {
	byMethod  map[string]MethodPolicy
	byService map[string]MethodPolicy
}

type jsonName struct {
	Service string `json:"service"`
	Method  string `json:"method"`
}

type jsonRetry struct {
	MaxAttempts          int      `json:"maxAttempts"`
	InitialBackoff       string   `json:"initialBackoff"`
	MaxBackoff           string   `json:"maxBackoff"`
	BackoffMultiplier    float64  `json:"backoffMultiplier"`
	RetryableStatusCodes []string `json:"retryableStatusCodes"`
}

type jsonMethodConfig struct {
	Name        []jsonName `json:"name"`
	Timeout     string     `json:"timeout"`
	RetryPolicy *jsonRetry `json:"retryPolicy"`
}

// parseDuration reads the JSON mapping of a protobuf Duration ("0.1s", "2s").
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if !strings.HasSuffix(s, "s") {
		return 0, fmt.Errorf("duration %q: want seconds such as \"2s\"", s)
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "s"), 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("duration %q: want seconds such as \"2s\"", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// codeByName reads a canonical status code name as service configs spell them
// ("UNAVAILABLE", "CANCELLED"; Go's own String() says "Canceled").
func codeByName(name string) (codes.Code, bool) {
	var c codes.Code
	if err := c.UnmarshalJSON([]byte(strconv.Quote(name))); err != nil {
		return 0, false
	}
	return c, true
}

func parseRetry(j *jsonRetry) (*RetryPolicy, error) {
	if j == nil {
		return nil, nil
	}
	p := &RetryPolicy{MaxAttempts: j.MaxAttempts, BackoffMultiplier: j.BackoffMultiplier,
		RetryableCodes: map[codes.Code]bool{}}
	var err error
	if p.InitialBackoff, err = parseDuration(j.InitialBackoff); err != nil {
		return nil, err
	}
	if p.MaxBackoff, err = parseDuration(j.MaxBackoff); err != nil {
		return nil, err
	}
	if p.MaxAttempts < 2 || p.InitialBackoff <= 0 || p.MaxBackoff <= 0 || p.BackoffMultiplier <= 0 {
		return nil, fmt.Errorf("retryPolicy: maxAttempts >= 2 and positive backoffs required")
	}
	if p.MaxAttempts > 5 { // gRPC's own cap
		p.MaxAttempts = 5
	}
	for _, n := range j.RetryableStatusCodes {
		c, ok := codeByName(n)
		if !ok {
			return nil, fmt.Errorf("retryPolicy: unknown status code %q", n)
		}
		p.RetryableCodes[c] = true
	}
	return p, nil
}

// ParseServiceConfig reads a gRPC service config's methodConfig entries (timeout and
// retryPolicy; other fields are ignored).
func ParseServiceConfig(text string) (*ServiceConfig, error) {
	var doc struct {
		MethodConfig []jsonMethodConfig `json:"methodConfig"`
	}
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		return nil, fmt.Errorf("service config: %w", err)
	}
	sc := &ServiceConfig{byMethod: map[string]MethodPolicy{}, byService: map[string]MethodPolicy{}}
	for _, mc := range doc.MethodConfig {
		timeout, err := parseDuration(mc.Timeout)
		if err != nil {
			return nil, fmt.Errorf("service config: %w", err)
		}
		retry, err := parseRetry(mc.RetryPolicy)
		if err != nil {
			return nil, fmt.Errorf("service config: %w", err)
		}
		for _, n := range mc.Name {
			p := MethodPolicy{Timeout: timeout, Retry: retry}
			if n.Method == "" {
				sc.byService["/"+n.Service+"/"] = p
			} else {
				sc.byMethod["/"+n.Service+"/"+n.Method] = p
			}
		}
	}
	return sc, nil
}

// Policy returns the policy of a full method name ("/sessiontoken.v1.SessionTokens/Sign"):
// its own entry, else its service's, else none.
func (sc *ServiceConfig) Policy(fullMethod string) MethodPolicy {
	if p, ok := sc.byMethod[fullMethod]; ok {
		return p
	}
	if i := strings.LastIndex(fullMethod, "/"); i >= 0 {
		if p, ok := sc.byService[fullMethod[:i+1]]; ok {
			return p
		}
	}
	return MethodPolicy{}
}

// Backoff returns the longest pause before retry number n (1 = the first retry); the client
// sleeps a uniformly random time up to it, as gRPC does.
func (p *RetryPolicy) Backoff(n int) time.Duration {
	b := float64(p.InitialBackoff)
	for i := 1; i < n; i++ {
		b *= p.BackoffMultiplier
	}
	if b > float64(p.MaxBackoff) {
		b = float64(p.MaxBackoff)
	}
	return time.Duration(b)
}

// interceptor applies the config to every unary call; deadline overrides every method's
// timeout when non-zero.
func (sc *ServiceConfig) interceptor(deadline time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply interface{},
		cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		p := sc.Policy(method)
		timeout := p.Timeout
		if deadline > 0 {
			timeout = deadline
		}
		if _, has := ctx.Deadline(); !has && timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		for attempt := 1; ; attempt++ {
			err := invoker(ctx, method, req, reply, cc, opts...)
			// A call this side cancelled (ctx) is over, whatever the code says: only a
			// server's CANCELLED (a draining server that had not started it) is retried.
			if err == nil || p.Retry == nil || attempt >= p.Retry.MaxAttempts ||
				!p.Retry.RetryableCodes[status.Code(err)] || ctx.Err() != nil {
				return err
			}
			pause := time.Duration(rand.Int63n(int64(p.Retry.Backoff(attempt)) + 1))
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return err // the last attempt's error says why, not "deadline exceeded"
			case <-t.C:
			}
		}
	}
}
