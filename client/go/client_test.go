package sessiontoken_test

// Client against the real server: typed results, errors with their gRPC codes, revocation,
// and the shared retry policy (attempts counted by an interceptor inside the client's own).

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"sessiontoken"
	"sessiontoken/internal/pb"
	"sessiontoken/sessiontest"
)

func TestSignVerify(t *testing.T) {
	srv := sessiontest.Start(t)
	c, err := sessiontoken.New(sessiontoken.Options{Address: srv.Address, Keyring: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	s, err := c.Sign(ctx, sessiontoken.SignRequest{Payload: []byte("hello"), TTL: time.Hour, Audience: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if s.ExpiresAt.Sub(s.IssuedAt) != time.Hour || s.KeyID == 0 {
		t.Errorf("sign: %+v", s)
	}
	v, err := c.Verify(ctx, sessiontoken.VerifyRequest{Token: s.Token, Audience: "web"})
	if err != nil || !v.Valid || v.Result != "VALID" || string(v.Payload) != "hello" || v.KeyID != s.KeyID ||
		!v.IssuedAt.Equal(s.IssuedAt) || v.RefreshRecommended {
		t.Errorf("verify: %+v %v", v, err)
	}
	v, err = c.Verify(ctx, sessiontoken.VerifyRequest{Token: s.Token, Audience: "api"})
	if err != nil || v.Valid || v.Result != "WRONG_AUDIENCE" || v.Payload != nil {
		t.Errorf("wrong audience: %+v %v", v, err)
	}
	_, err = c.Sign(ctx, sessiontoken.SignRequest{Keyring: "nope", Payload: []byte("x"), TTL: time.Hour})
	if sessiontoken.Code(err) != codes.NotFound {
		t.Errorf("unknown keyring: %v", err)
	}
	_, err = c.Sign(ctx, sessiontoken.SignRequest{Payload: make([]byte, 5000), TTL: time.Hour})
	if sessiontoken.Code(err) != codes.InvalidArgument {
		t.Errorf("oversized payload: %v", err)
	}
	if _, err := c.Sign(ctx, sessiontoken.SignRequest{Payload: []byte("x"), TTL: 1500 * time.Millisecond}); err == nil {
		t.Error("a fractional TTL was sent")
	}
	noDefault, _ := sessiontoken.New(sessiontoken.Options{Address: srv.Address})
	defer noDefault.Close()
	if _, err := noDefault.Verify(ctx, sessiontoken.VerifyRequest{Token: s.Token}); err == nil {
		t.Error("a call without a keyring was sent")
	}
}

func TestBatches(t *testing.T) {
	srv := sessiontest.Start(t)
	c, err := sessiontoken.New(sessiontoken.Options{Address: srv.Address, Keyring: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	signed, err := c.BatchSign(ctx, []sessiontoken.SignRequest{
		{Payload: []byte("a"), TTL: time.Hour, Audience: "web"},
		{Keyring: "nope", Payload: []byte("b"), TTL: time.Hour},
		{Payload: []byte("c"), TTL: time.Minute, Audience: "web"},
	})
	if err != nil || len(signed) != 3 || signed[0].Err != nil || signed[2].Err != nil ||
		sessiontoken.Code(signed[1].Err) != codes.NotFound {
		t.Fatalf("BatchSign: %+v %v", signed, err)
	}
	verified, err := c.BatchVerify(ctx, []sessiontoken.VerifyRequest{
		{Token: signed[2].Result.Token, Audience: "web"},
		{Token: signed[0].Result.Token, Audience: "api"},
		{Keyring: "nope", Token: "x"},
		{Token: signed[0].Result.Token, Audience: "web"},
	})
	if err != nil || len(verified) != 4 {
		t.Fatalf("BatchVerify: %+v %v", verified, err)
	}
	if v := verified[0].Result; !v.Valid || string(v.Payload) != "c" {
		t.Errorf("item 0: %+v", v)
	}
	if v := verified[1].Result; v.Result != "WRONG_AUDIENCE" {
		t.Errorf("item 1: %+v", v)
	}
	if sessiontoken.Code(verified[2].Err) != codes.NotFound {
		t.Errorf("item 2: %v", verified[2].Err)
	}
	if v := verified[3].Result; !v.Valid || string(v.Payload) != "a" {
		t.Errorf("item 3: %+v", v)
	}
}

// attempts counts the attempts the client's retry interceptor makes.
func attempts(n *int32) grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply interface{},
		cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		atomic.AddInt32(n, 1)
		return invoker(ctx, method, req, reply, cc, opts...)
	})
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestRetriesFromServiceConfig(t *testing.T) {
	addr := closedPort(t)
	var n int32
	c, err := sessiontoken.New(sessiontoken.Options{Address: addr, Keyring: "default",
		Deadline: 30 * time.Second, DialOptions: []grpc.DialOption{attempts(&n)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	_, err = c.Verify(ctx, sessiontoken.VerifyRequest{Token: "st1.x"})
	if sessiontoken.Code(err) != codes.Unavailable || n != 5 {
		t.Errorf("Verify, service down: %v after %d attempts, want Unavailable after 5", err, n)
	}
	n = 0
	_, err = c.Rotate(ctx, "", false)
	if sessiontoken.Code(err) != codes.Unavailable || n != 1 {
		t.Errorf("Rotate, service down: %v after %d attempts, want 1 (never retried)", err, n)
	}
}

// The retries stop at the call's deadline.
func TestRetriesStopAtTheDeadline(t *testing.T) {
	var n int32
	c, err := sessiontoken.New(sessiontoken.Options{Address: closedPort(t), Keyring: "default",
		DialOptions: []grpc.DialOption{attempts(&n)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Verify(ctx, sessiontoken.VerifyRequest{Token: "st1.x"}); err == nil || n > 1 {
		t.Errorf("cancelled context: %v after %d attempts, want an error after at most 1", err, n)
	}
}

// sent records the last request message the client sends (after its own checks).
func sent(last *interface{}) grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply interface{},
		cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		*last = req
		return invoker(ctx, method, req, reply, cc, opts...)
	})
}

// Subject at Sign, Verify's subject and token id, Revoke by token and by subject (REVOKED),
// and the RevokeRequest messages the client sends.
func TestRevoke(t *testing.T) {
	srv := sessiontest.Start(t)
	var last interface{}
	c, err := sessiontoken.New(sessiontoken.Options{Address: srv.Address, Keyring: "default",
		DialOptions: []grpc.DialOption{sent(&last)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	sign := func(subject string) sessiontoken.SignResult {
		t.Helper()
		s, err := c.Sign(ctx, sessiontoken.SignRequest{Payload: []byte("p"), TTL: time.Hour, Audience: "web", Subject: subject})
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := last.(*pb.SignRequest); !ok || r.GetSubject() != subject {
			t.Fatalf("SignRequest sent: %v", last)
		}
		return s
	}
	verify := func(token string) sessiontoken.VerifyResult {
		t.Helper()
		v, err := c.Verify(ctx, sessiontoken.VerifyRequest{Token: token, Audience: "web"})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	phone, laptop, other := sign("alice"), sign("alice"), sign("bob")
	if v := verify(phone.Token); !v.Valid || v.Subject != "alice" || phone.TokenID == "" || v.TokenID != phone.TokenID {
		t.Fatalf("verify with a subject: %+v (signed token id %q)", v, phone.TokenID)
	}

	// By token: that one session only.
	r, err := c.Revoke(ctx, sessiontoken.RevokeRequest{Token: phone.Token, Audience: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if req, ok := last.(*pb.RevokeRequest); !ok || req.GetKeyring() != "default" || req.GetToken() != phone.Token ||
		req.GetSubject() != "" || req.GetAudience() != "web" {
		t.Errorf("RevokeRequest by token sent: %v", last)
	}
	if r.RevokedAt.IsZero() || r.DropAfter.Before(phone.ExpiresAt) || time.Since(r.RevokedAt) > time.Minute {
		t.Errorf("revoke by token: %+v (token expires %v)", r, phone.ExpiresAt)
	}
	if v := verify(phone.Token); v.Valid || v.Result != "REVOKED" || v.Payload != nil || v.Subject != "" {
		t.Errorf("revoked token: %+v", v)
	}
	if v := verify(laptop.Token); !v.Valid {
		t.Errorf("another session of the subject: %+v", v)
	}
	if _, err := c.Revoke(ctx, sessiontoken.RevokeRequest{Token: laptop.Token, Audience: "api"}); sessiontoken.Code(err) != codes.InvalidArgument {
		t.Errorf("revoke with the wrong audience: %v", err)
	}

	// By subject: every session of alice issued until now, not bob's.
	r, err = c.Revoke(ctx, sessiontoken.RevokeRequest{Subject: "alice", Audience: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	if req, ok := last.(*pb.RevokeRequest); !ok || req.GetSubject() != "alice" || req.GetToken() != "" {
		t.Errorf("RevokeRequest by subject sent: %v", last)
	}
	if !r.DropAfter.After(r.RevokedAt) {
		t.Errorf("revoke by subject: %+v", r)
	}
	if v := verify(laptop.Token); v.Result != "REVOKED" {
		t.Errorf("laptop after revoking the subject: %+v", v)
	}
	if v := verify(other.Token); !v.Valid || v.Subject != "bob" {
		t.Errorf("another subject after revoking alice: %+v", v)
	}

	// Exactly one target, checked before anything is sent.
	last = nil
	for name, bad := range map[string]sessiontoken.RevokeRequest{"none": {},
		"both": {Token: other.Token, Subject: "bob"}} {
		if _, err := c.Revoke(ctx, bad); err == nil || last != nil {
			t.Errorf("revoke with %s target: %v, sent %v", name, err, last)
		}
	}
}
