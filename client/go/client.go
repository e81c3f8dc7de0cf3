// Package sessiontoken is the Go client of the sessiontoken service: SessionTokens (Sign,
// Verify, BatchSign, BatchVerify, Revoke) and the KeyAdmin calls an application or its tests
// need (Rotate, ListKeys). Deadlines and retries follow the service config shared by every client
// (proto/sessiontoken/v1/service_config.json). The net/http session middleware is in
// package sessiontoken/session.
package sessiontoken

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"sessiontoken/internal/pb"
)

// DefaultAddress is where `make run` serves.
const DefaultAddress = "127.0.0.1:50051"

// Options configures a Client. The zero value dials DefaultAddress without TLS.
type Options struct {
	Address  string        // host:port of the service (default DefaultAddress)
	Keyring  string        // keyring of calls that name none
	Deadline time.Duration // of every call whose context has none; default: the method's timeout in the service config
	// DialOptions are added to the client's (e.g. grpc.WithTransportCredentials for TLS; the
	// default is plaintext, for a service on the same host or a private network).
	DialOptions []grpc.DialOption
	// ServiceConfig replaces proto/sessiontoken/v1/service_config.json (JSON text).
	ServiceConfig string
}

// Client is safe for concurrent use. Close it when done.
type Client struct {
	conn    *grpc.ClientConn
	tokens  pb.SessionTokensClient
	admin   pb.KeyAdminClient
	keyring string
}

// Error is a failed call: the service could not be reached, refused the request or failed.
// A token that does not verify is not an error (VerifyResult.Result says why).
type Error struct {
	Method  string     // e.g. "SessionTokens.Sign"
	Code    codes.Code // gRPC status code
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("sessiontoken: %s failed: %s: %s", e.Method, e.Code, e.Message)
}

// Code returns the gRPC code of err if it is (or wraps) an *Error, else codes.Unknown.
func Code(err error) codes.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return codes.Unknown
}

// New creates a client. The connection is made lazily; calls fail with Unavailable (after the
// configured retries) while the service cannot be reached.
func New(o Options) (*Client, error) {
	if o.Address == "" {
		o.Address = DefaultAddress
	}
	if o.ServiceConfig == "" {
		o.ServiceConfig = pb.ServiceConfigJSON
	}
	if o.Deadline < 0 {
		return nil, errors.New("sessiontoken: Deadline must not be negative")
	}
	sc, err := ParseServiceConfig(o.ServiceConfig)
	if err != nil {
		return nil, err
	}
	// Reconnect quickly after the service restarts (gRPC otherwise backs off up to 120 s),
	// and give each connection attempt 5 s: a busy service that has just restarted can be
	// slow to answer one, and too short a floor keeps it out of reach (seen with etcd).
	bo := backoff.DefaultConfig
	bo.BaseDelay, bo.MaxDelay = 200*time.Millisecond, 2*time.Second
	dial := []grpc.DialOption{
		grpc.WithInsecure(),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: 5 * time.Second}),
		grpc.WithChainUnaryInterceptor(sc.interceptor(o.Deadline)),
	}
	conn, err := grpc.Dial(o.Address, append(dial, o.DialOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("sessiontoken: %w", err)
	}
	return &Client{conn: conn, tokens: pb.NewSessionTokensClient(conn),
		admin: pb.NewKeyAdminClient(conn), keyring: o.Keyring}, nil
}

// Close closes the connection; later calls fail with Canceled.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) keyringOf(k string) (string, error) {
	if k != "" {
		return k, nil
	}
	if c.keyring == "" {
		return "", errors.New("sessiontoken: keyring required (or set Options.Keyring)")
	}
	return c.keyring, nil
}

func wrap(method string, err error) error {
	s, _ := status.FromError(err)
	return &Error{Method: method, Code: s.Code(), Message: s.Message()}
}

func toTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// SignRequest is one token to issue. TTL is whole seconds.
type SignRequest struct {
	Keyring  string // default: the client's
	Payload  []byte
	TTL      time.Duration
	Audience string // bound into the MAC; Verify must give the same
	// Subject names whose session this is (e.g. the user id, at most 128 bytes): returned by
	// Verify and what Revoke by subject ("log out everywhere") matches. Optional.
	Subject string
}

// SignResult is an issued token.
type SignResult struct {
	Token     string
	KeyID     uint32
	IssuedAt  time.Time
	ExpiresAt time.Time
	TokenID   string // the v2 token's random id (what a revocation of this token names)
}

func (c *Client) signProto(r SignRequest) (*pb.SignRequest, error) {
	k, err := c.keyringOf(r.Keyring)
	if err != nil {
		return nil, err
	}
	if r.TTL <= 0 || r.TTL%time.Second != 0 {
		return nil, errors.New("sessiontoken: TTL must be a positive whole number of seconds")
	}
	return &pb.SignRequest{Keyring: k, Payload: r.Payload, Ttl: durationpb.New(r.TTL),
		Audience: r.Audience, Subject: r.Subject}, nil
}

func signResult(resp *pb.SignResponse) SignResult {
	return SignResult{Token: resp.GetToken(), KeyID: resp.GetKeyId(), IssuedAt: toTime(resp.GetIssuedAt()),
		ExpiresAt: toTime(resp.GetExpiresAt()), TokenID: resp.GetTokenId()}
}

// Sign issues a token for the payload under the keyring's primary key.
func (c *Client) Sign(ctx context.Context, r SignRequest) (SignResult, error) {
	req, err := c.signProto(r)
	if err != nil {
		return SignResult{}, err
	}
	resp, err := c.tokens.Sign(ctx, req)
	if err != nil {
		return SignResult{}, wrap("SessionTokens.Sign", err)
	}
	return signResult(resp), nil
}

// VerifyRequest is a token to check.
type VerifyRequest struct {
	Keyring  string
	Token    string
	Audience string
	MaxAge   time.Duration // 0: no limit beyond the token's expiry
}

// VerifyResult says whether a token is genuine and current. Payload and Subject are set
// only if Valid.
type VerifyResult struct {
	// "VALID", "MALFORMED", "EXPIRED", "BAD_SIGNATURE", ..., "REVOKED" (genuine, but its
	// session was revoked by Revoke)
	Result             string
	Valid              bool
	Payload            []byte
	KeyID              uint32 // 0 when the token names no key
	IssuedAt           time.Time
	ExpiresAt          time.Time
	RefreshRecommended bool   // valid, but signed by a key that is no longer the primary
	Subject            string // v2 tokens: the subject given at Sign
	TokenID            string // v2 tokens: the token's random id
}

func (c *Client) verifyProto(r VerifyRequest) (*pb.VerifyRequest, error) {
	k, err := c.keyringOf(r.Keyring)
	if err != nil {
		return nil, err
	}
	if r.MaxAge < 0 || r.MaxAge%time.Second != 0 {
		return nil, errors.New("sessiontoken: MaxAge must be a whole number of seconds")
	}
	req := &pb.VerifyRequest{Keyring: k, Token: r.Token, Audience: r.Audience}
	if r.MaxAge > 0 {
		req.MaxAge = durationpb.New(r.MaxAge)
	}
	return req, nil
}

func verifyResult(resp *pb.VerifyResponse) VerifyResult {
	valid := resp.GetResult() == pb.VerifyResponse_VALID
	out := VerifyResult{Result: resp.GetResult().String(), Valid: valid, KeyID: resp.GetKeyId(),
		IssuedAt: toTime(resp.GetIssuedAt()), ExpiresAt: toTime(resp.GetExpiresAt()),
		RefreshRecommended: valid && resp.GetRefreshRecommended()}
	if valid {
		out.Payload, out.Subject = resp.GetPayload(), resp.GetSubject()
	}
	out.TokenID = resp.GetTokenId()
	return out
}

// Verify checks a token. It returns an error only when the call failed, never for a token
// that is not valid.
func (c *Client) Verify(ctx context.Context, r VerifyRequest) (VerifyResult, error) {
	req, err := c.verifyProto(r)
	if err != nil {
		return VerifyResult{}, err
	}
	resp, err := c.tokens.Verify(ctx, req)
	if err != nil {
		return VerifyResult{}, wrap("SessionTokens.Verify", err)
	}
	return verifyResult(resp), nil
}

// RevokeRequest names what to revoke: one session by its token (with the audience it was
// signed for), or every session of a subject issued until now. Exactly one of Token and
// Subject is set.
type RevokeRequest struct {
	Keyring  string // default: the client's
	Token    string // a v2 token of the keyring that verifies for Audience
	Audience string // with Token; ignored for a subject
	Subject  string
}

// RevokeResult is a stored revocation: Verify answers REVOKED for the tokens it matches;
// the entry is dropped after DropAfter, when none of them can be valid any more.
type RevokeResult struct {
	RevokedAt time.Time
	DropAfter time.Time
}

// Revoke revokes one session (by token) or every session of a subject issued until now
// ("log out everywhere"); tokens issued later are valid. A token that does not verify is
// InvalidArgument; revoking a token again succeeds. See docs/revocation.md.
func (c *Client) Revoke(ctx context.Context, r RevokeRequest) (RevokeResult, error) {
	k, err := c.keyringOf(r.Keyring)
	if err != nil {
		return RevokeResult{}, err
	}
	req := &pb.RevokeRequest{Keyring: k}
	switch {
	case (r.Token == "") == (r.Subject == ""):
		return RevokeResult{}, errors.New("sessiontoken: Revoke needs exactly one of Token and Subject")
	case r.Token != "":
		req.Target, req.Audience = &pb.RevokeRequest_Token{Token: r.Token}, r.Audience
	default:
		req.Target = &pb.RevokeRequest_Subject{Subject: r.Subject}
	}
	resp, err := c.tokens.Revoke(ctx, req)
	if err != nil {
		return RevokeResult{}, wrap("SessionTokens.Revoke", err)
	}
	return RevokeResult{RevokedAt: toTime(resp.GetRevokedAt()), DropAfter: toTime(resp.GetDropAfter())}, nil
}

// RotateResult is the outcome of Rotate.
type RotateResult struct {
	NewKeyID             uint32
	PreviousPrimaryKeyID uint32
	Revision             uint64
}

// Rotate adds a key to the keyring (an operator's call; never retried). With promoteNow the
// new key becomes the primary at once; otherwise the keyring's policy decides (see the
// server's documentation).
func (c *Client) Rotate(ctx context.Context, keyring string, promoteNow bool) (RotateResult, error) {
	k, err := c.keyringOf(keyring)
	if err != nil {
		return RotateResult{}, err
	}
	resp, err := c.admin.Rotate(ctx, &pb.RotateRequest{Keyring: k, PromoteNow: promoteNow})
	if err != nil {
		return RotateResult{}, wrap("KeyAdmin.Rotate", err)
	}
	return RotateResult{NewKeyID: resp.GetNewKey().GetKeyId(),
		PreviousPrimaryKeyID: resp.PreviousPrimaryKeyId, Revision: resp.Revision}, nil
}

// PrimaryKeyID returns the id of the keyring's primary key (KeyAdmin.ListKeys).
func (c *Client) PrimaryKeyID(ctx context.Context, keyring string) (uint32, error) {
	k, err := c.keyringOf(keyring)
	if err != nil {
		return 0, err
	}
	resp, err := c.admin.ListKeys(ctx, &pb.ListKeysRequest{Keyring: k})
	if err != nil {
		return 0, wrap("KeyAdmin.ListKeys", err)
	}
	return resp.PrimaryKeyId, nil
}
