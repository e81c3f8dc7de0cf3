package sessiontoken

// Parser of the public fields of native `st1` tokens (docs/token-format.md), with the
// server's strict syntax rules. It cannot check the MAC (it holds no key): use it for
// display and diagnosis (which key signed a cookie, when it expires), never to trust a
// token. Only Verify says whether a token is genuine.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
)

const (
	// MaxTokenChars is the longest token of any format; longer strings are MALFORMED.
	MaxTokenChars = 4095
	// MaxNativePayloadBytes is the largest payload the st1 format can carry.
	MaxNativePayloadBytes = 3000
	nativePrefix          = "st1."
	nativeFixedBytes      = 56 // key id 4 + issued-at 8 + expires-at 8 + audience tag 4 + MAC 32
	nativeMACBytes        = 32
)

// NativeToken holds the public fields of an st1 token. Times are Unix seconds.
type NativeToken struct {
	KeyID       uint32
	IssuedAt    int64
	ExpiresAt   int64
	AudienceTag [4]byte
	Payload     []byte
	MAC         []byte
}

// ParseNativeToken returns the token's fields, or false when the token is MALFORMED.
func ParseNativeToken(token string) (NativeToken, bool) {
	if len(token) > MaxTokenChars || !strings.HasPrefix(token, nativePrefix) {
		return NativeToken{}, false
	}
	b64 := token[len(nativePrefix):]
	// Strict: URL alphabet, no padding, and the unused low bits of the last character zero
	// (so that each body has exactly one encoding).
	body, err := base64.RawURLEncoding.Strict().DecodeString(b64)
	if err != nil || strings.ContainsAny(b64, "\r\n") {
		return NativeToken{}, false
	}
	if len(body) < nativeFixedBytes || len(body)-nativeFixedBytes > MaxNativePayloadBytes {
		return NativeToken{}, false
	}
	t := NativeToken{
		KeyID:     binary.BigEndian.Uint32(body[0:4]),
		IssuedAt:  int64(binary.BigEndian.Uint64(body[4:12])),
		ExpiresAt: int64(binary.BigEndian.Uint64(body[12:20])),
		Payload:   append([]byte(nil), body[24:len(body)-nativeMACBytes]...),
		MAC:       append([]byte(nil), body[len(body)-nativeMACBytes:]...),
	}
	copy(t.AudienceTag[:], body[20:24])
	if t.IssuedAt < 0 || t.ExpiresAt < t.IssuedAt {
		return NativeToken{}, false
	}
	return t, true
}

// NativeAudienceTag is the 4-byte audience tag an st1 token carries: SHA-256(audience)[0:4].
func NativeAudienceTag(audience string) [4]byte {
	sum := sha256.Sum256([]byte(audience))
	var tag [4]byte
	copy(tag[:], sum[:4])
	return tag
}
