#include <zlib.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/crypto/hmac.h"
#include "server/token/base64url.h"
#include "server/token/flask.h"
#include "server/token/native.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/test_util.h"

// The largest single operator-new allocation while tracking is on: shows that inflating a
// zip bomb never allocates more than the payload limit (zlib's own window is malloc'ed).
std::atomic<bool> g_track_allocations{false};
std::atomic<size_t> g_largest_allocation{0};

void* operator new(size_t n) {
  if (g_track_allocations.load(std::memory_order_relaxed)) {
    size_t prev = g_largest_allocation.load(std::memory_order_relaxed);
    while (n > prev && !g_largest_allocation.compare_exchange_weak(prev, n)) {
    }
  }
  void* p = std::malloc(n ? n : 1);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
// Not inlined: GCC would otherwise see new-expressions paired with free() and warn
// (-Wmismatched-new-delete), although these are the matching replacement functions.
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace sessiontoken::token {
namespace {

using ::sessiontoken::testing::IsOk;
using ::testing::Not;

using ::sessiontoken::testing::Hex;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

struct Vector {
  std::string name, secret, salt, payload, cookie;
  int64_t timestamp;
  bool compressed;
};

std::vector<Vector> LoadVectors() {
  std::string json = sessiontoken::testing::ReadFile(std::string(SESSIONTOKEN_SOURCE_DIR) +
                                                     "/tests/vectors/flask_v1.json");
  google::protobuf::Struct root;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &root).ok());
  std::vector<Vector> out;
  for (const auto& v : root.fields().at("vectors").list_value().values()) {
    const auto& f = v.struct_value().fields();
    out.push_back(Vector{f.at("name").string_value(), Hex(f.at("secret_hex").string_value()),
                         f.at("salt").string_value(), Hex(f.at("payload_hex").string_value()),
                         f.at("cookie").string_value(),
                         static_cast<int64_t>(f.at("timestamp").number_value()),
                         f.at("compressed").bool_value()});
  }
  return out;
}

const Vector& FindVector(const std::vector<Vector>& vectors, absl::string_view name) {
  for (const Vector& v : vectors) {
    if (v.name == name) return v;
  }
  ADD_FAILURE() << "no vector " << name;
  return vectors.front();
}

std::unique_ptr<crypto::Hmac> Signer(absl::string_view secret,
                                     absl::string_view salt = kFlaskDefaultSalt) {
  auto s = DeriveFlaskSigner(secret, salt);
  EXPECT_THAT(s, IsOk()) << s.status();
  return *std::move(s);
}

// Accepted = parses and the signature verifies: what a verifier would do.
bool Accepts(const crypto::Hmac& signer, absl::string_view token) {
  std::optional<ParsedFlaskToken> t = ParseFlask(token);
  return t.has_value() && CheckFlaskSignature(signer, *t);
}

// Appends a valid signature to arbitrary signed text, bypassing SignFlask, so that the
// malformed tokens below are rejected by the parser and not merely by the MAC.
std::string SignRaw(const crypto::Hmac& signer, absl::string_view signed_part) {
  uint8_t sig[crypto::Hmac::kMaxTagSize];
  signer.Compute({signed_part}, sig);
  return std::string(signed_part) + "." +
         Base64UrlEncode(absl::string_view(reinterpret_cast<const char*>(sig), signer.tag_size()));
}

std::string Zlib(absl::string_view in) {
  uLongf size = compressBound(in.size());
  std::string out(size, '\0');
  EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                      reinterpret_cast<const Bytef*>(in.data()), in.size(), Z_DEFAULT_COMPRESSION),
            Z_OK);
  out.resize(size);
  return out;
}

// "." base64url(zlib bytes) "." base64url(ts) with a valid signature.
std::string CompressedToken(const crypto::Hmac& signer, absl::string_view zlib_bytes,
                            absl::string_view ts = "aVW5AA") {
  return SignRaw(signer, "." + Base64UrlEncode(zlib_bytes) + "." + std::string(ts));
}

// tests/vectors/flask_v1.json comes from the real Flask (tests/vectors/flask_v1.py): the
// C++ codec must produce the same cookies byte for byte and accept all of them.
TEST(FlaskTokenTest, MatchesRealFlaskVectors) {
  std::vector<Vector> vectors = LoadVectors();
  ASSERT_GE(vectors.size(), 10u);
  int compressed = 0;
  for (const Vector& v : vectors) {
    SCOPED_TRACE(v.name);
    auto signer = Signer(v.secret, v.salt);
    ASSERT_NE(signer, nullptr);
    EXPECT_EQ(SignFlask(*signer, v.payload, v.timestamp), v.cookie);
    EXPECT_TRUE(LooksLikeFlask(v.cookie));
    std::optional<ParsedFlaskToken> t = ParseFlask(v.cookie);
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->payload, v.payload);
    EXPECT_EQ(t->timestamp, v.timestamp);
    EXPECT_EQ(t->compressed, v.compressed);
    EXPECT_EQ(t->signed_part, v.cookie.substr(0, v.cookie.rfind('.')));
    EXPECT_EQ(t->signature.size(), kFlaskSignatureSize);
    EXPECT_TRUE(CheckFlaskSignature(*signer, *t));
    // Wrong secret, wrong salt, the default salt where another was used.
    EXPECT_FALSE(CheckFlaskSignature(*Signer(v.secret + "x", v.salt), *t));
    EXPECT_FALSE(CheckFlaskSignature(*Signer(v.secret, v.salt + "x"), *t));
    EXPECT_FALSE(CheckFlaskSignature(*Signer(v.secret.substr(1), v.salt), *t));
    if (v.salt != kFlaskDefaultSalt) {
      EXPECT_FALSE(CheckFlaskSignature(*Signer(v.secret), *t));
    }
    compressed += v.compressed;
  }
  EXPECT_GE(compressed, 3);
  EXPECT_LE(compressed, static_cast<int>(vectors.size()) - 3);
}

TEST(FlaskTokenTest, DeriveSigner) {
  EXPECT_THAT(DeriveFlaskSigner("", kFlaskDefaultSalt),
              Not(IsOk()));  // Flask: no secret, no session
  auto s = DeriveFlaskSigner("secret", "");
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ((*s)->tag_size(), kFlaskSignatureSize);
  // The derived key is HMAC-SHA1(secret, salt), not the secret itself.
  auto direct = crypto::Hmac::New(crypto::HashFunction::kSha1, "secret");
  ASSERT_THAT(direct, IsOk());
  std::string t = SignFlask(**s, "{}", 1);
  EXPECT_TRUE(Accepts(**s, t));
  EXPECT_FALSE(Accepts(**direct, t));
}

TEST(FlaskTokenTest, RoundTripsAllSmallPayloadsAndTimestamps) {
  auto signer = Signer("round-trip");
  std::string payload;
  for (int i = 0; i < 200; ++i) {
    for (int64_t ts :
         {int64_t{0}, int64_t{1}, int64_t{255}, int64_t{256}, int64_t{1767225600}, INT64_MAX}) {
      std::string token = SignFlask(*signer, payload, ts);
      std::optional<ParsedFlaskToken> t = ParseFlask(token);
      ASSERT_TRUE(t.has_value()) << i << " " << ts << " " << token;
      EXPECT_EQ(t->payload, payload);
      EXPECT_EQ(t->timestamp, ts);
      EXPECT_TRUE(CheckFlaskSignature(*signer, *t));
      EXPECT_TRUE(LooksLikeFlask(token)) << token;
    }
    // Alternate compressible and incompressible growth.
    payload.push_back(i % 2 ? 'a' : static_cast<char>(i * 131));
  }
}

TEST(FlaskTokenTest, TokensAreCookieSafe) {
  auto signer = Signer("k");
  std::string payload;
  for (int i = 0; i < 2000; ++i) payload.push_back(static_cast<char>(i * 7));
  for (const std::string& p : {payload, std::string(5000, '{')}) {
    std::string t = SignFlask(*signer, p, 1767225600);
    for (char c : t) {
      EXPECT_TRUE(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')
          << static_cast<int>(c);
    }
  }
}

// Every single-character change anywhere in a cookie is rejected (by the parser or by the
// signature), never crashes, and never yields an accepted token.
TEST(FlaskTokenTest, RejectsEveryCharacterFlip) {
  std::vector<Vector> vectors = LoadVectors();
  for (absl::string_view name : {"small", "large-repetitive", "timestamp-zero"}) {
    const Vector& v = FindVector(vectors, name);
    auto signer = Signer(v.secret, v.salt);
    ASSERT_TRUE(Accepts(*signer, v.cookie));
    for (size_t i = 0; i < v.cookie.size(); ++i) {
      for (char c : std::string(kAlphabet) + std::string(".=+/ \n\0", 7)) {
        if (c == v.cookie[i]) continue;
        std::string bad = v.cookie;
        bad[i] = c;
        EXPECT_FALSE(Accepts(*signer, bad)) << name << " " << i << " " << bad;
      }
    }
  }
}

TEST(FlaskTokenTest, RejectsTruncationAndExtraDots) {
  std::vector<Vector> vectors = LoadVectors();
  for (absl::string_view name : {"small", "large-repetitive"}) {
    const Vector& v = FindVector(vectors, name);
    auto signer = Signer(v.secret, v.salt);
    const std::string& c = v.cookie;
    for (size_t n = 0; n < c.size(); ++n) {
      EXPECT_FALSE(Accepts(*signer, c.substr(0, n))) << n;
      EXPECT_FALSE(Accepts(*signer, c.substr(n + 1))) << n;
    }
    for (size_t i = 0; i <= c.size(); ++i) {
      std::string bad = c;
      bad.insert(i, ".");
      EXPECT_FALSE(ParseFlask(bad).has_value()) << bad;
    }
    EXPECT_FALSE(Accepts(*signer, c + "."));
    EXPECT_FALSE(Accepts(*signer, c + ".x"));
    EXPECT_FALSE(Accepts(*signer, "." + c));
    EXPECT_FALSE(Accepts(*signer, c + c));
  }
  auto signer = Signer("k");
  for (const char* s : {"", ".", "..", "...", "....", "a.b", "a..", ".a.", "..a", "a.b.c.d"}) {
    EXPECT_FALSE(ParseFlask(s).has_value()) << s;
  }
}

// Encodings that itsdangerous's lenient base64 decoding would accept for the same cookie
// (it re-pads, ignores non-ASCII, maps the standard alphabet, keeps unused bits): Flask never
// emits them, so the strict parser rejects them.
TEST(FlaskTokenTest, RejectsNonCanonicalEncodingsItsdangerousWouldAccept) {
  std::vector<Vector> vectors = LoadVectors();
  const Vector& v = FindVector(vectors, "empty-dict");  // its signature has '-' and '_'
  auto signer = Signer(v.secret, v.salt);
  const std::string& c = v.cookie;
  ASSERT_NE(c.find('-'), std::string::npos);
  ASSERT_NE(c.find('_'), std::string::npos);
  ASSERT_TRUE(Accepts(*signer, c));
  std::string std_alphabet = c;
  for (char& ch : std_alphabet) ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
  std::string last_bits = c;  // 27 characters carry 162 bits: the last 2 are unused
  last_bits.back() = kAlphabet[(std::string(kAlphabet).find(c.back())) ^ 1];
  for (const std::string& bad :
       {c + "=", c + "==", std_alphabet, last_bits,
        c.substr(0, c.size() - 5) + "\xc3\xa9" + c.substr(c.size() - 5), c + "\n", " " + c}) {
    EXPECT_FALSE(ParseFlask(bad).has_value()) << bad;
  }
  // Padding on the other sections, re-signed so that only the syntax is wrong.
  const std::string body = c.substr(0, c.find('.'));  // "e30"
  EXPECT_FALSE(ParseFlask(SignRaw(*signer, body + "=.aVW5AA")).has_value());
  EXPECT_FALSE(ParseFlask(SignRaw(*signer, body + ".aVW5AA==")).has_value());
  EXPECT_TRUE(ParseFlask(SignRaw(*signer, body + ".aVW5AA")).has_value());
}

TEST(FlaskTokenTest, TimestampMustBeCanonical) {
  auto signer = Signer("k");
  auto ts_token = [&](absl::string_view ts_bytes) {
    return SignRaw(*signer, "e30." + Base64UrlEncode(ts_bytes));
  };
  auto ts_of = [&](absl::string_view ts_bytes) {
    std::optional<ParsedFlaskToken> t = ParseFlask(ts_token(ts_bytes));
    return t.has_value() ? t->timestamp : int64_t{-1};
  };
  auto bytes = [](std::initializer_list<uint8_t> b) { return std::string(b.begin(), b.end()); };
  EXPECT_EQ(ts_of(""), 0);
  EXPECT_EQ(ts_of(bytes({0x01})), 1);
  EXPECT_EQ(ts_of(bytes({0x69, 0x55, 0xb9, 0x00})), 1767225600);
  EXPECT_EQ(ts_of(bytes({0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})), INT64_MAX);
  EXPECT_EQ(ts_of(bytes({0x00})), -1);                          // leading zero byte
  EXPECT_EQ(ts_of(bytes({0x00, 0x69, 0x55, 0xb9, 0x00})), -1);  // leading zero byte
  EXPECT_EQ(ts_of(bytes({0x80, 0, 0, 0, 0, 0, 0, 0})), -1);     // >= 2^63
  EXPECT_EQ(ts_of(bytes({0x01, 0, 0, 0, 0, 0, 0, 0, 0})), -1);  // 9 bytes
}

TEST(FlaskTokenTest, SignatureMustBe20Bytes) {
  auto signer = Signer("k");
  std::string t = SignFlask(*signer, "{}", 5);
  std::string signed_part = t.substr(0, t.rfind('.'));
  ASSERT_TRUE(ParseFlask(t).has_value());
  EXPECT_FALSE(ParseFlask(signed_part + "." + Base64UrlEncode(std::string(19, 'x'))));
  EXPECT_FALSE(ParseFlask(signed_part + "." + Base64UrlEncode(std::string(21, 'x'))));
  EXPECT_FALSE(ParseFlask(signed_part + "." + Base64UrlEncode(std::string(32, 'x'))));
  EXPECT_FALSE(ParseFlask(signed_part + ".").has_value());
}

TEST(FlaskTokenTest, TokenSizeLimit) {
  auto signer = Signer("k");
  // Incompressible bytes, so the body is plain base64url: 3045 bytes -> 4060 characters,
  // + "." + 6 (timestamp) + "." + 27 (signature) = 4095.
  std::string payload;
  uint32_t x = 12345;
  for (int i = 0; i < 3046; ++i) {
    x = x * 1103515245 + 12345;
    payload.push_back(static_cast<char>(x >> 24));
  }
  std::string max = SignFlask(*signer, payload.substr(0, 3045), 1767225600);
  ASSERT_EQ(max.size(), kFlaskMaxTokenSize);
  EXPECT_TRUE(Accepts(*signer, max));
  std::string over = SignFlask(*signer, payload, 1767225600);
  ASSERT_GT(over.size(), kFlaskMaxTokenSize);
  EXPECT_FALSE(ParseFlask(over).has_value());
}

TEST(FlaskTokenTest, DecompressionIsBounded) {
  auto signer = Signer("k");
  // At the limit: accepted. One byte more: rejected.
  std::string at_limit(kFlaskMaxPayloadSize, '0');
  std::optional<ParsedFlaskToken> t = ParseFlask(CompressedToken(*signer, Zlib(at_limit)));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->payload, at_limit);
  EXPECT_FALSE(ParseFlask(CompressedToken(*signer, Zlib(at_limit + "0"))).has_value());
  // A zip bomb that fits in a cookie: ~2 KB of zlib inflating to 2 MB. Rejected, and no
  // allocation made while parsing it is much larger than the limit.
  std::string bomb = Zlib(std::string(2 << 20, '\0'));
  std::string bomb_token = CompressedToken(*signer, bomb);
  ASSERT_LE(bomb_token.size(), kFlaskMaxTokenSize);
  g_largest_allocation = 0;
  g_track_allocations = true;
  bool parsed = ParseFlask(bomb_token).has_value();
  g_track_allocations = false;
  EXPECT_FALSE(parsed);
  EXPECT_GT(g_largest_allocation.load(), kFlaskMaxPayloadSize / 2);  // tracking works
  EXPECT_LE(g_largest_allocation.load(), kFlaskMaxPayloadSize + 2);  // cap + 1 + NUL
  // 10 MB of zeros: ~10 KB compressed, over the token limit before any inflating.
  EXPECT_FALSE(ParseFlask(CompressedToken(*signer, Zlib(std::string(10 << 20, '\0')))));
  // SignFlask of a 10 MB payload (a precondition violation) still cannot get past ParseFlask.
  EXPECT_FALSE(ParseFlask(SignFlask(*signer, std::string(10 << 20, '\0'), 1)).has_value());
}

TEST(FlaskTokenTest, CompressedBodyMustBeOneCompleteZlibStream) {
  auto signer = Signer("k");
  const std::string json = R"({"cart":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]})";
  const std::string z = Zlib(json);
  std::optional<ParsedFlaskToken> ok = ParseFlask(CompressedToken(*signer, z));
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->payload, json);
  EXPECT_TRUE(ok->compressed);
  // Python's zlib.decompress ignores data after the stream; we do not.
  EXPECT_FALSE(ParseFlask(CompressedToken(*signer, z + "x")));
  EXPECT_FALSE(ParseFlask(CompressedToken(*signer, z + z)));
  EXPECT_FALSE(ParseFlask(CompressedToken(*signer, z + std::string(1, '\0'))));
  for (size_t n = 0; n < z.size(); ++n) {  // every truncation, including the checksum
    EXPECT_FALSE(ParseFlask(CompressedToken(*signer, z.substr(0, n)))) << n;
  }
  std::string bad_adler = z;
  bad_adler.back() ^= 1;
  EXPECT_FALSE(ParseFlask(CompressedToken(*signer, bad_adler)));
  EXPECT_FALSE(ParseFlask(CompressedToken(*signer, z.substr(2))));  // raw deflate
  EXPECT_FALSE(ParseFlask(CompressedToken(*signer, json)));         // not compressed
  EXPECT_FALSE(ParseFlask(CompressedToken(*signer, "")));
  // Uncompressed bodies are taken as they are.
  std::optional<ParsedFlaskToken> plain =
      ParseFlask(SignRaw(*signer, Base64UrlEncode(json) + ".aVW5AA"));
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->payload, json);
  EXPECT_FALSE(plain->compressed);
}

TEST(FlaskTokenTest, LooksLikeFlaskDispatch) {
  std::vector<Vector> vectors = LoadVectors();
  for (const Vector& v : vectors) EXPECT_TRUE(LooksLikeFlask(v.cookie)) << v.name;
  auto native = crypto::Hmac::New(crypto::HashFunction::kSha256, std::string(32, 'k'));
  ASSERT_THAT(native, IsOk());
  EXPECT_FALSE(LooksLikeFlask(SignNative(**native, {1, 2, 3}, "aud", "{\"a\":1}")));
  EXPECT_FALSE(LooksLikeFlask(""));
  EXPECT_FALSE(LooksLikeFlask("st1.AAAA"));
  EXPECT_FALSE(LooksLikeFlask("a.b"));
  EXPECT_FALSE(LooksLikeFlask("a.b.c.d"));
  EXPECT_FALSE(LooksLikeFlask("a..b.c"));
  EXPECT_TRUE(LooksLikeFlask("a.b.c"));
  EXPECT_TRUE(LooksLikeFlask(".a.b.c"));
}

}  // namespace
}  // namespace sessiontoken::token
