package sessiontoken

// Batch calls: many Sign or Verify requests in one round trip, results in request order. One
// item's failure (e.g. an unknown keyring) does not fail the others.

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"

	"sessiontoken/internal/pb"
)

// BatchSignItem is one result of BatchSign: Err is nil and Result set, or Err is an *Error.
type BatchSignItem struct {
	Result SignResult
	Err    error
}

// BatchVerifyItem is one result of BatchVerify: Err is nil and Result set, or Err is an *Error.
type BatchVerifyItem struct {
	Result VerifyResult
	Err    error
}

func itemErr(method string, code int32, msg string) error {
	return &Error{Method: method, Code: codes.Code(code), Message: msg}
}

// BatchSign signs every request; the call fails as a whole only if the RPC fails.
func (c *Client) BatchSign(ctx context.Context, reqs []SignRequest) ([]BatchSignItem, error) {
	in := &pb.BatchSignRequest{}
	for _, r := range reqs {
		p, err := c.signProto(r)
		if err != nil {
			return nil, err
		}
		in.Items = append(in.Items, p)
	}
	resp, err := c.tokens.BatchSign(ctx, in)
	if err != nil {
		return nil, wrap("SessionTokens.BatchSign", err)
	}
	if len(resp.Items) != len(reqs) {
		return nil, &Error{Method: "SessionTokens.BatchSign", Code: codes.Internal,
			Message: fmt.Sprintf("expected %d items in the response, got %d", len(reqs), len(resp.Items))}
	}
	out := make([]BatchSignItem, len(resp.Items))
	for i, it := range resp.Items {
		if it.Code != 0 {
			out[i].Err = itemErr("SessionTokens.BatchSign", it.Code, it.Message)
		} else {
			out[i].Result = signResult(it.Response)
		}
	}
	return out, nil
}

// BatchVerify checks every token; the call fails as a whole only if the RPC fails.
func (c *Client) BatchVerify(ctx context.Context, reqs []VerifyRequest) ([]BatchVerifyItem, error) {
	in := &pb.BatchVerifyRequest{}
	for _, r := range reqs {
		p, err := c.verifyProto(r)
		if err != nil {
			return nil, err
		}
		in.Items = append(in.Items, p)
	}
	resp, err := c.tokens.BatchVerify(ctx, in)
	if err != nil {
		return nil, wrap("SessionTokens.BatchVerify", err)
	}
	if len(resp.Items) != len(reqs) {
		return nil, &Error{Method: "SessionTokens.BatchVerify", Code: codes.Internal,
			Message: fmt.Sprintf("expected %d items in the response, got %d", len(reqs), len(resp.Items))}
	}
	out := make([]BatchVerifyItem, len(resp.Items))
	for i, it := range resp.Items {
		if it.Code != 0 {
			out[i].Err = itemErr("SessionTokens.BatchVerify", it.Code, it.Message)
		} else {
			out[i].Result = verifyResult(it.Response)
		}
	}
	return out, nil
}
