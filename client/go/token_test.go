package sessiontoken

// ParseNativeToken against the shared vectors (tests/vectors/native_v1.json, made by the
// independent reference implementation tests/vectors/native_v1.py) and every MALFORMED rule
// of docs/token-format.md.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type vector struct {
	Name        string `json:"name"`
	KeyHex      string `json:"key_hex"`
	KeyID       uint32 `json:"key_id"`
	IssuedAt    int64  `json:"issued_at"`
	ExpiresAt   int64  `json:"expires_at"`
	AudienceHex string `json:"audience_hex"`
	PayloadHex  string `json:"payload_hex"`
	Token       string `json:"token"`
}

// vectorsFile is found from SESSIONTOKEN_VECTORS (ctest sets it) or relative to the source.
func loadVectors(t *testing.T) []vector {
	t.Helper()
	path := os.Getenv("SESSIONTOKEN_VECTORS")
	if path == "" {
		path = filepath.Join("..", "..", "tests", "vectors", "native_v1.json")
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("vectors: %v (set SESSIONTOKEN_VECTORS)", err)
	}
	var doc struct {
		Format  string   `json:"format"`
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(text, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Format != "st1" || len(doc.Vectors) < 5 {
		t.Fatalf("vectors file: format %q, %d vectors", doc.Format, len(doc.Vectors))
	}
	return doc.Vectors
}

func unhex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// macOf is the MAC rule of docs/token-format.md (test only: the library holds no keys).
func macOf(key, audience, signedBody []byte) []byte {
	m := hmac.New(sha256.New, key)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(audience)))
	m.Write([]byte("st1."))
	m.Write(n[:])
	m.Write(audience)
	m.Write(signedBody)
	return m.Sum(nil)
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			tok, ok := ParseNativeToken(v.Token)
			if !ok {
				t.Fatal("parse failed")
			}
			if tok.KeyID != v.KeyID || tok.IssuedAt != v.IssuedAt || tok.ExpiresAt != v.ExpiresAt {
				t.Errorf("fields %d %d %d, want %d %d %d", tok.KeyID, tok.IssuedAt, tok.ExpiresAt,
					v.KeyID, v.IssuedAt, v.ExpiresAt)
			}
			if hex.EncodeToString(tok.Payload) != v.PayloadHex {
				t.Errorf("payload %x, want %s", tok.Payload, v.PayloadHex)
			}
			aud := unhex(t, v.AudienceHex)
			if tag := NativeAudienceTag(string(aud)); tag != tok.AudienceTag {
				t.Errorf("audience tag %x, want %x", tok.AudienceTag, tag)
			}
			body, _ := base64.RawURLEncoding.DecodeString(v.Token[4:])
			if want := macOf(unhex(t, v.KeyHex), aud, body[:len(body)-32]); !bytes.Equal(tok.MAC, want) {
				t.Errorf("MAC %x, want %x", tok.MAC, want)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	var good string
	for _, v := range loadVectors(t) {
		if v.Name == "hello" {
			good = v.Token
		}
	}
	if _, ok := ParseNativeToken(good); !ok {
		t.Fatal("the hello vector does not parse")
	}
	body, _ := base64.RawURLEncoding.DecodeString(good[4:])
	withTimes := func(iat, exp int64) string {
		b := append([]byte(nil), body...)
		binary.BigEndian.PutUint64(b[4:], uint64(iat))
		binary.BigEndian.PutUint64(b[12:], uint64(exp))
		return "st1." + base64.RawURLEncoding.EncodeToString(b)
	}
	if _, ok := ParseNativeToken(withTimes(5, 5)); !ok {
		t.Error("expires_at == issued_at must parse")
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, good[len(good)-1])
	cases := map[string]string{
		"empty":                 "",
		"no prefix":             good[4:],
		"other version":         "st2." + good[4:],
		"upper-case prefix":     "ST1." + good[4:],
		"padding":               good + "=",
		"standard alphabet +":   good[:10] + "+" + good[11:],
		"standard alphabet /":   good[:10] + "/" + good[11:],
		"whitespace":            good[:10] + " " + good[10:],
		"newline":               good[:10] + "\n" + good[10:],
		"extra dot":             good + ".x",
		"length mod 4 == 1":     good + "AAA",
		"non-zero unused bits":  good[:len(good)-1] + string(alphabet[last^1]),
		"body of 55 bytes":      "st1." + base64.RawURLEncoding.EncodeToString(make([]byte, 55)),
		"issued_at < 0":         withTimes(-1, 5),
		"expires_at < issued":   withTimes(10, 9),
		"payload of 3001 bytes": "st1." + base64.RawURLEncoding.EncodeToString(make([]byte, 56+3001)),
		"over 4095 characters":  "st1." + strings.Repeat("A", 4092),
	}
	if (len(good)-4)%4 == 0 || (len(good)+3-4)%4 != 1 {
		t.Fatalf("test setup: the hello token's length %d no longer fits the mod-4 case", len(good))
	}
	for name, tok := range cases {
		if _, ok := ParseNativeToken(tok); ok {
			t.Errorf("%s: parsed, want MALFORMED", name)
		}
	}
	if _, ok := ParseNativeToken("st1." + base64.RawURLEncoding.EncodeToString(make([]byte, 56+3000))); !ok {
		t.Error("a payload of 3000 bytes must parse")
	}
}
