#include <string>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/crypto/aead.h"
#include "server/crypto/hmac.h"
#include "server/token/base64url.h"
#include "server/token/native.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/test_util.h"

namespace sessiontoken::token {
namespace {

using ::sessiontoken::testing::IsOk;
using ::testing::Not;

using ::sessiontoken::testing::Hex;

TEST(Base64UrlTest, Rfc4648Vectors) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("fooba"), "Zm9vYmE");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
}

TEST(Base64UrlTest, RoundTripsAllLengths) {
  std::string data;
  for (int i = 0; i < 300; ++i) {
    std::string enc = Base64UrlEncode(data);
    EXPECT_EQ(enc.size(), Base64UrlEncodedSize(data.size()));
    std::string dec;
    ASSERT_TRUE(Base64UrlDecodeStrict(enc, &dec)) << i;
    EXPECT_EQ(dec, data);
    data.push_back(static_cast<char>(i * 37));
  }
}

TEST(Base64UrlTest, RejectsNonCanonical) {
  std::string out;
  EXPECT_FALSE(Base64UrlDecodeStrict("Zg==", &out));    // padding
  EXPECT_FALSE(Base64UrlDecodeStrict("Zh", &out));      // unused bits set
  EXPECT_FALSE(Base64UrlDecodeStrict("Zm-", &out));     // '-' = 62: low 2 bits set
  EXPECT_FALSE(Base64UrlDecodeStrict("Z", &out));       // impossible length
  EXPECT_FALSE(Base64UrlDecodeStrict("Zm9v+g", &out));  // standard alphabet
  EXPECT_FALSE(Base64UrlDecodeStrict("Zm9v/g", &out));
  EXPECT_FALSE(Base64UrlDecodeStrict("Zm 9v", &out));  // whitespace
  EXPECT_FALSE(Base64UrlDecodeStrict("Zm9v\n", &out));
  EXPECT_FALSE(Base64UrlDecodeStrict(std::string("Zm\0v", 4), &out));
  EXPECT_TRUE(Base64UrlDecodeStrict("Zm8", &out));
  EXPECT_EQ(out, "fo");
}

struct Vector {
  std::string name, key, audience, payload, token;
  uint32_t key_id;
  int64_t issued_at, expires_at;
};

std::vector<Vector> LoadVectors() {
  std::string json = sessiontoken::testing::ReadFile(std::string(SESSIONTOKEN_SOURCE_DIR) +
                                                     "/tests/vectors/native_v1.json");
  google::protobuf::Struct root;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &root).ok());
  std::vector<Vector> out;
  for (const auto& v : root.fields().at("vectors").list_value().values()) {
    const auto& f = v.struct_value().fields();
    out.push_back(Vector{f.at("name").string_value(), Hex(f.at("key_hex").string_value()),
                         Hex(f.at("audience_hex").string_value()),
                         Hex(f.at("payload_hex").string_value()), f.at("token").string_value(),
                         static_cast<uint32_t>(f.at("key_id").number_value()),
                         static_cast<int64_t>(f.at("issued_at").number_value()),
                         static_cast<int64_t>(f.at("expires_at").number_value())});
  }
  return out;
}

// tests/vectors/native_v1.json comes from an independent Python implementation of
// docs/token-format.md (tests/vectors/native_v1.py): our codec must match it byte for byte.
TEST(NativeTokenTest, MatchesSharedVectors) {
  std::vector<Vector> vectors = LoadVectors();
  ASSERT_GE(vectors.size(), 5u);
  for (const Vector& v : vectors) {
    auto mac = crypto::Hmac::New(crypto::HashFunction::kSha256, v.key);
    ASSERT_THAT(mac, IsOk());
    NativeClaims claims{v.key_id, v.issued_at, v.expires_at};
    EXPECT_EQ(SignNative(**mac, claims, v.audience, v.payload), v.token) << v.name;
    auto parsed = ParseNative(v.token);
    ASSERT_TRUE(parsed.has_value()) << v.name;
    EXPECT_EQ(parsed->claims.key_id, v.key_id);
    EXPECT_EQ(parsed->claims.issued_at, v.issued_at);
    EXPECT_EQ(parsed->claims.expires_at, v.expires_at);
    EXPECT_EQ(parsed->payload(), v.payload);
    EXPECT_TRUE(CheckNativeMac(**mac, *parsed, v.audience)) << v.name;
    EXPECT_FALSE(CheckNativeMac(**mac, *parsed, v.audience + "x")) << v.name;
    EXPECT_LT(v.token.size(), 4096u);
  }
}

TEST(NativeTokenTest, TokensAreCookieSafe) {
  auto mac = crypto::Hmac::New(crypto::HashFunction::kSha256, std::string(32, 'k'));
  ASSERT_THAT(mac, IsOk());
  std::string payload;
  for (int i = 0; i < 3000; ++i) payload.push_back(static_cast<char>(i));
  std::string t = SignNative(**mac, {1, 2, 3}, "aud", payload);
  EXPECT_LE(t.size(), kMaxTokenSize);
  for (char c : t) {
    // RFC 6265 cookie-octet, and no characters that need escaping in URLs.
    EXPECT_TRUE(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')
        << static_cast<int>(c);
  }
}

TEST(NativeTokenTest, ParseRejectsStructuralErrors) {
  auto mac = crypto::Hmac::New(crypto::HashFunction::kSha256, std::string(32, 'k'));
  std::string t = SignNative(**mac, {9, 100, 200}, "", "payload");
  ASSERT_TRUE(ParseNative(t).has_value());
  EXPECT_FALSE(ParseNative("").has_value());
  EXPECT_FALSE(ParseNative("st1.").has_value());
  EXPECT_FALSE(ParseNative("st2." + t.substr(4)).has_value());
  EXPECT_FALSE(ParseNative(t + ".").has_value());
  EXPECT_FALSE(ParseNative(t + "A").has_value());
  EXPECT_FALSE(ParseNative(t.substr(0, t.size() - 1)).has_value());
  // iat > exp is malformed even before the MAC is looked at.
  EXPECT_FALSE(ParseNative(SignNative(**mac, {9, 200, 100}, "", "p")).has_value());
  // Negative issued-at.
  EXPECT_FALSE(ParseNative(SignNative(**mac, {9, -5, 100}, "", "p")).has_value());
}

struct VectorV2 {
  std::string name, key, audience, subject, token_id, token_id_text, payload, nonce, token;
  uint32_t key_id;
  int64_t issued_at, expires_at;
  bool sealed;
};

std::vector<VectorV2> LoadVectorsV2() {
  std::string json = sessiontoken::testing::ReadFile(std::string(SESSIONTOKEN_SOURCE_DIR) +
                                                     "/tests/vectors/native_v2.json");
  google::protobuf::Struct root;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &root).ok());
  std::vector<VectorV2> out;
  for (const auto& v : root.fields().at("vectors").list_value().values()) {
    const auto& f = v.struct_value().fields();
    auto hex = [&](const char* name) { return Hex(f.at(name).string_value()); };
    out.push_back(VectorV2{
        f.at("name").string_value(), hex("key_hex"), hex("audience_hex"), hex("subject_hex"),
        hex("token_id_hex"), f.at("token_id").string_value(), hex("payload_hex"), hex("nonce_hex"),
        f.at("token").string_value(), static_cast<uint32_t>(f.at("key_id").number_value()),
        static_cast<int64_t>(f.at("issued_at").number_value()),
        static_cast<int64_t>(f.at("expires_at").number_value()), f.at("sealed").bool_value()});
  }
  return out;
}

// tests/vectors/native_v2.json comes from an independent Python implementation
// (tests/vectors/native_v2.py: hmac/hashlib, HKDF from RFC 5869, AES-GCM from
// python3-cryptography): with the same token id and nonce, our codec must produce the same
// bytes, and parse, authenticate and open every vector.
TEST(NativeTokenV2Test, MatchesSharedVectors) {
  std::vector<VectorV2> vectors = LoadVectorsV2();
  ASSERT_GE(vectors.size(), 8u);
  int sealed = 0;
  for (const VectorV2& v : vectors) {
    auto mac = crypto::Hmac::New(crypto::HashFunction::kSha256, v.key);
    auto aead = DeriveSealKey(v.key);
    ASSERT_THAT(mac, IsOk());
    ASSERT_THAT(aead, IsOk());
    NativeClaims claims{v.key_id, v.issued_at, v.expires_at};
    PayloadSeal seal{aead->get(), v.nonce};
    auto signed_token = SignNativeV2(**mac, claims, {v.token_id, v.subject}, v.audience, v.payload,
                                     v.sealed ? &seal : nullptr);
    ASSERT_THAT(signed_token, IsOk());
    EXPECT_EQ(*signed_token, v.token) << v.name;
    EXPECT_EQ(NativeV2TokenSize(v.subject.size(), v.payload.size(), v.sealed), v.token.size());
    auto parsed = ParseNative(v.token);
    ASSERT_TRUE(parsed.has_value()) << v.name;
    EXPECT_EQ(parsed->version, 2);
    EXPECT_EQ(parsed->claims.key_id, v.key_id);
    EXPECT_EQ(parsed->claims.issued_at, v.issued_at);
    EXPECT_EQ(parsed->claims.expires_at, v.expires_at);
    EXPECT_EQ(parsed->subject(), v.subject);
    EXPECT_EQ(parsed->token_id(), v.token_id);
    EXPECT_EQ(Base64UrlEncode(parsed->token_id()), v.token_id_text);
    EXPECT_EQ(parsed->sealed(), v.sealed);
    EXPECT_TRUE(CheckNativeMac(**mac, *parsed, v.audience)) << v.name;
    EXPECT_FALSE(CheckNativeMac(**mac, *parsed, v.audience + "x")) << v.name;
    if (v.sealed) {
      ++sealed;
      auto plain = OpenSealedPayload(**aead, *parsed, v.audience);
      ASSERT_THAT(plain, IsOk()) << v.name;
      EXPECT_EQ(plain->view(), v.payload);
      EXPECT_THAT(OpenSealedPayload(**aead, *parsed, v.audience + "x"), Not(IsOk()));
      if (v.payload.size() >= 8) {
        EXPECT_EQ(v.token.find(Base64UrlEncode(v.payload.substr(0, 6))), std::string::npos);
      }
    } else {
      EXPECT_EQ(parsed->payload(), v.payload);
    }
    EXPECT_LE(v.token.size(), kMaxTokenSize);
  }
  EXPECT_GE(sealed, 4);
}

TEST(NativeTokenV2Test, SizesAndLimits) {
  // A 4095-character token holds a 3068-byte body; v2 adds 18 bytes to v1's 56.
  EXPECT_EQ(kMaxBodySize, 3068u);
  EXPECT_EQ(kV2Overhead, 74u);
  EXPECT_EQ(kSealOverhead, 28u);
  EXPECT_EQ(NativeV2TokenSize(kMaxSubjectSize,
                              kMaxBodySize - kV2Overhead - kMaxSubjectSize - kSealOverhead, true),
            kMaxTokenSize);
  auto mac = crypto::Hmac::New(crypto::HashFunction::kSha256, std::string(32, 'k'));
  const std::string id(kTokenIdSize, 't'), long_subject(129, 's');
  EXPECT_THAT(SignNativeV2(**mac, {1, 2, 3}, {id, long_subject}, "", "p", nullptr), Not(IsOk()));
  EXPECT_THAT(SignNativeV2(**mac, {1, 2, 3}, {"short", "s"}, "", "p", nullptr), Not(IsOk()));
  EXPECT_THAT(SignNativeV2(**mac, {1, 2, 3}, {id, "s"}, "", "p", nullptr), IsOk());
}

// Re-encodes a v2 token with decoded body byte `offset` set to `value`.
std::string SetBodyByte(const std::string& t, size_t offset, char value) {
  std::string body;
  EXPECT_TRUE(Base64UrlDecodeStrict(absl::string_view(t).substr(4), &body));
  body[offset] = value;
  return t.substr(0, 4) + Base64UrlEncode(body);
}

TEST(NativeTokenV2Test, ParseRejectsStructuralErrors) {
  auto mac = crypto::Hmac::New(crypto::HashFunction::kSha256, std::string(32, 'k'));
  auto aead = DeriveSealKey(std::string(32, 'k'));
  ASSERT_THAT(aead, IsOk());
  const std::string id(kTokenIdSize, 'i');
  NativeClaims claims{9, 100, 200};
  auto t = SignNativeV2(**mac, claims, {id, "sub"}, "", "payload", nullptr);
  ASSERT_THAT(t, IsOk());
  ASSERT_TRUE(ParseNative(*t).has_value());
  const size_t flags_at = kNativeHeaderSize, subject_len_at = kV2FixedHeaderSize - 1;
  EXPECT_FALSE(ParseNative("st2.").has_value());
  EXPECT_FALSE(ParseNative("st3." + t->substr(4)).has_value());
  EXPECT_FALSE(ParseNative(SetBodyByte(*t, flags_at, 0x02)).has_value());  // unknown flag
  EXPECT_FALSE(ParseNative(SetBodyByte(*t, flags_at, '\x80')).has_value());
  EXPECT_FALSE(ParseNative(SetBodyByte(*t, subject_len_at, static_cast<char>(129))).has_value());
  // A subject length running past the payload and MAC.
  EXPECT_FALSE(ParseNative(SetBodyByte(*t, subject_len_at, 127)).has_value());
  // "sealed" but too short to hold a nonce and a tag (7 payload bytes < 28).
  EXPECT_FALSE(ParseNative(SetBodyByte(*t, flags_at, 0x01)).has_value());
  // Below the v2 minimum: a v1-sized body under the v2 prefix.
  EXPECT_FALSE(
      ParseNative("st2." + SignNative(**mac, {9, 100, 200}, "", "").substr(4)).has_value());
  // A v1 body of the same length as a v2 one is not a v2 token (its flags byte is payload).
  EXPECT_FALSE(
      ParseNative("st2." + SignNative(**mac, {9, 100, 200}, "", "user=42").substr(4)).has_value());
  claims.issued_at = 300;
  EXPECT_FALSE(ParseNative(*SignNativeV2(**mac, claims, {id, "s"}, "", "p", nullptr)).has_value());
}

}  // namespace
}  // namespace sessiontoken::token
