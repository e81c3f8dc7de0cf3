#include <string>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
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

}  // namespace
}  // namespace sessiontoken::token
