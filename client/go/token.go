package sessiontoken

// Parser of the public fields of native tokens, `st2` (what Sign issues: subject, token
// id, payload in clear or sealed) and `st1` (older tokens), per docs/token-format.md, with
// the server's strict syntax rules. It cannot check the MAC (it holds no key): use it for
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
	nativeV2Prefix        = "st2."
	nativeFixedBytes      = 56 // key id 4 + issued-at 8 + expires-at 8 + audience tag 4 + MAC 32
	nativeMACBytes        = 32
	nativeHeaderBytes     = 24
	v2HeaderBytes         = nativeHeaderBytes + 1 + 16 + 1 // + flags, token id, subject length
	maxSubjectBytes       = 128
	sealOverhead          = 12 + 16 // AES-GCM nonce + tag
)

// NativeToken holds the public fields of an st1 token. Times are Unix seconds.
type NativeToken struct {
	KeyID       uint32
	IssuedAt    int64
	ExpiresAt   int64
	AudienceTag [4]byte
	Payload     []byte // in clear; for a sealed st2 token: nonce | ciphertext | GCM tag
	MAC         []byte
	Version     int    // 1 or 2
	Sealed      bool   // st2: only the service can open the payload
	TokenID     string // st2: base64url (22 characters)
	Subject     []byte // st2
}

// v2Start checks the st2 fields and returns where the payload starts (-1: malformed).
func v2Start(body []byte, t *NativeToken) int {
	if len(body) < v2HeaderBytes+nativeMACBytes || body[nativeHeaderBytes]&^1 != 0 {
		return -1
	}
	n := int(body[v2HeaderBytes-1])
	t.Sealed = body[nativeHeaderBytes] == 1
	need := v2HeaderBytes + n + nativeMACBytes
	if t.Sealed {
		need += sealOverhead
	}
	if n > maxSubjectBytes || len(body) < need {
		return -1
	}
	t.Version = 2
	t.TokenID = base64.RawURLEncoding.EncodeToString(body[nativeHeaderBytes+1 : nativeHeaderBytes+17])
	t.Subject = append([]byte(nil), body[v2HeaderBytes:v2HeaderBytes+n]...)
	return v2HeaderBytes + n
}

// ParseNativeToken returns the token's fields, or false when the token is MALFORMED.
func ParseNativeToken(token string) (NativeToken, bool) {
	v2 := strings.HasPrefix(token, nativeV2Prefix)
	if len(token) > MaxTokenChars || !(v2 || strings.HasPrefix(token, nativePrefix)) {
		return NativeToken{}, false
	}
	b64 := token[len(nativePrefix):]
	// Strict: URL alphabet, no padding, and the unused low bits of the last character zero
	// (so that each body has exactly one encoding).
	body, err := base64.RawURLEncoding.Strict().DecodeString(b64)
	if err != nil || strings.ContainsAny(b64, "\r\n") {
		return NativeToken{}, false
	}
	t := NativeToken{Version: 1}
	start := nativeHeaderBytes
	if v2 {
		if start = v2Start(body, &t); start < 0 {
			return NativeToken{}, false
		}
	} else if len(body) < nativeFixedBytes || len(body)-nativeFixedBytes > MaxNativePayloadBytes {
		return NativeToken{}, false
	}
	t.KeyID = binary.BigEndian.Uint32(body[0:4])
	t.IssuedAt = int64(binary.BigEndian.Uint64(body[4:12]))
	t.ExpiresAt = int64(binary.BigEndian.Uint64(body[12:20]))
	t.Payload = append([]byte(nil), body[start:len(body)-nativeMACBytes]...)
	t.MAC = append([]byte(nil), body[len(body)-nativeMACBytes:]...)
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
