package sessiontoken

// ParseNativeToken against the shared vectors (tests/vectors/native_v1.json and native_v2.json,
// made by the independent reference implementations native_v1.py and native_v2.py) and every
// MALFORMED rule of docs/token-format.md.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
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
	PayloadHex  string `json:"payload_hex"` // for a sealed st2 vector: the plaintext
	Token       string `json:"token"`
	SubjectHex  string `json:"subject_hex"` // st2 only, as are the fields below
	TokenID     string `json:"token_id"`
	Sealed      bool   `json:"sealed"`
	NonceHex    string `json:"nonce_hex"`
}

// loadVectors reads tests/vectors/NAME from the directory of SESSIONTOKEN_VECTORS (test.sh
// and ctest set it to native_v1.json there) or, without it, relative to the source.
func loadVectors(t *testing.T, name, format string) []vector {
	t.Helper()
	dir := filepath.Join("..", "..", "tests", "vectors")
	if env := os.Getenv("SESSIONTOKEN_VECTORS"); env != "" {
		dir = filepath.Dir(env)
	}
	text, err := os.ReadFile(filepath.Join(dir, name))
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
	if doc.Format != format || len(doc.Vectors) < 5 {
		t.Fatalf("%s: format %q, %d vectors", name, doc.Format, len(doc.Vectors))
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

// bound is the MAC's (and the seal's) prefix of docs/token-format.md: the version prefix of
// the token ("st1." or "st2."), then the audience with its length.
func bound(prefix string, audience []byte) []byte {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(audience)))
	return append(append([]byte(prefix), n[:]...), audience...)
}

// macOf is the MAC rule of docs/token-format.md (test only: the library holds no keys).
func macOf(key, bound, signedBody []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(bound)
	m.Write(signedBody)
	return m.Sum(nil)
}

// checkVector parses v.Token and checks what every version carries (version, key id, times,
// audience tag, MAC); it returns the parsed token and the decoded body.
func checkVector(t *testing.T, v vector, version int) (NativeToken, []byte) {
	t.Helper()
	tok, ok := ParseNativeToken(v.Token)
	if !ok {
		t.Fatal("parse failed")
	}
	if tok.Version != version {
		t.Errorf("version %d, want %d", tok.Version, version)
	}
	if tok.KeyID != v.KeyID || tok.IssuedAt != v.IssuedAt || tok.ExpiresAt != v.ExpiresAt {
		t.Errorf("fields %d %d %d, want %d %d %d", tok.KeyID, tok.IssuedAt, tok.ExpiresAt,
			v.KeyID, v.IssuedAt, v.ExpiresAt)
	}
	aud := unhex(t, v.AudienceHex)
	if tag := NativeAudienceTag(string(aud)); tag != tok.AudienceTag {
		t.Errorf("audience tag %x, want %x", tok.AudienceTag, tag)
	}
	body, err := base64.RawURLEncoding.DecodeString(v.Token[4:])
	if err != nil {
		t.Fatal(err)
	}
	want := macOf(unhex(t, v.KeyHex), bound(v.Token[:4], aud), body[:len(body)-32])
	if !bytes.Equal(tok.MAC, want) {
		t.Errorf("MAC %x, want %x", tok.MAC, want)
	}
	return tok, body
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t, "native_v1.json", "st1") {
		t.Run(v.Name, func(t *testing.T) {
			tok, _ := checkVector(t, v, 1)
			if hex.EncodeToString(tok.Payload) != v.PayloadHex {
				t.Errorf("payload %x, want %s", tok.Payload, v.PayloadHex)
			}
			if tok.Sealed || tok.TokenID != "" || len(tok.Subject) != 0 {
				t.Errorf("st1 with st2 fields: sealed %v, token id %q, subject %q",
					tok.Sealed, tok.TokenID, tok.Subject)
			}
		})
	}
}

func TestVectorsV2(t *testing.T) {
	vectors, sealed := loadVectors(t, "native_v2.json", "st2"), 0
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			tok, body := checkVector(t, v, 2)
			if hex.EncodeToString(tok.Subject) != v.SubjectHex || tok.TokenID != v.TokenID {
				t.Errorf("subject %x, token id %q, want %s, %q", tok.Subject, tok.TokenID,
					v.SubjectHex, v.TokenID)
			}
			if tok.Sealed != v.Sealed {
				t.Fatalf("sealed %v, want %v", tok.Sealed, v.Sealed)
			}
			if !v.Sealed && hex.EncodeToString(tok.Payload) != v.PayloadHex {
				t.Errorf("payload %x, want %s", tok.Payload, v.PayloadHex)
			}
			if v.Sealed {
				sealed++
				checkSealed(t, v, tok, body)
			}
		})
	}
	if sealed < 4 {
		t.Errorf("%d sealed vectors, want at least 4", sealed)
	}
}

// checkSealed: the parser reports nonce | ciphertext | tag, which does not show the
// plaintext and opens (test only) with the sealing key and associated data of
// docs/token-format.md.
func checkSealed(t *testing.T, v vector, tok NativeToken, body []byte) {
	t.Helper()
	plain := unhex(t, v.PayloadHex)
	if len(tok.Payload) != len(plain)+12+16 || hex.EncodeToString(tok.Payload[:12]) != v.NonceHex {
		t.Fatalf("sealed section %x: want nonce %s and %d bytes", tok.Payload, v.NonceHex,
			len(plain)+28)
	}
	if len(plain) >= 8 && bytes.Contains(body, plain[:8]) {
		t.Error("the sealed payload is readable in the token")
	}
	block, err := aes.NewCipher(sealKeyOf(unhex(t, v.KeyHex)))
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	aad := append(bound("st2.", unhex(t, v.AudienceHex)), body[:len(body)-32-len(tok.Payload)]...)
	opened, err := gcm.Open(nil, tok.Payload[:12], tok.Payload[12:], aad)
	if err != nil || !bytes.Equal(opened, plain) {
		t.Errorf("opened %x (%v), want %s", opened, err, v.PayloadHex)
	}
}

// sealKeyOf is HKDF-SHA256 (RFC 5869) with an empty salt, info "sessiontoken st2 payload
// seal" and L = 32, i.e. one extract and one expand block (test only; Go 1.19 has no hkdf).
func sealKeyOf(key []byte) []byte {
	extract := hmac.New(sha256.New, make([]byte, sha256.Size))
	extract.Write(key)
	expand := hmac.New(sha256.New, extract.Sum(nil))
	expand.Write([]byte("sessiontoken st2 payload seal\x01"))
	return expand.Sum(nil)
}

// refuseAll fails for each case that parses.
func refuseAll(t *testing.T, cases map[string]string) {
	t.Helper()
	for name, tok := range cases {
		if _, ok := ParseNativeToken(tok); ok {
			t.Errorf("%s: parsed, want MALFORMED", name)
		}
	}
}

func TestMalformed(t *testing.T) {
	var good string
	for _, v := range loadVectors(t, "native_v1.json", "st1") {
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
	refuseAll(t, cases)
	if _, ok := ParseNativeToken("st1." + base64.RawURLEncoding.EncodeToString(make([]byte, 56+3000))); !ok {
		t.Error("a payload of 3000 bytes must parse")
	}
}

func TestMalformedV2(t *testing.T) {
	var good string
	for _, v := range loadVectors(t, "native_v2.json", "st2") {
		if v.Name == "subject" {
			good = v.Token
		}
	}
	if tok, ok := ParseNativeToken(good); !ok || string(tok.Subject) != "user-42" {
		t.Fatalf("the subject vector: %v, subject %q", ok, tok.Subject)
	}
	body, _ := base64.RawURLEncoding.DecodeString(good[4:])
	withByte := func(i int, value byte) string {
		b := append([]byte(nil), body...)
		b[i] = value
		return "st2." + base64.RawURLEncoding.EncodeToString(b)
	}
	refuseAll(t, map[string]string{
		"unknown version":                 "st3." + good[4:],
		"unknown flag":                    withByte(24, 0x02),
		"high flag":                       withByte(24, 0x80),
		"sealed, too short for nonce+tag": withByte(24, 0x01),
		"subject of 129 bytes":            withByte(41, 129),
		"subject past the end":            withByte(41, 120),
		"body of 73 bytes":                "st2." + base64.RawURLEncoding.EncodeToString(body[:73]),
		"padding":                         good + "=",
		"over 4095 characters":            "st2." + strings.Repeat("A", 4092),
	})
	if _, ok := ParseNativeToken("st2." + base64.RawURLEncoding.EncodeToString(make([]byte, 74))); !ok {
		t.Error("a body of 74 bytes (no subject, empty payload) must parse")
	}
}
