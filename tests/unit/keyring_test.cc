#include "server/keyring/keyring.h"

#include <limits>
#include <string>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/keyring/lifecycle.h"
#include "server/keyring/stored_form.h"
#include "server/token/base64url.h"
#include "server/token/flask.h"
#include "server/token/native.h"
#include "tests/testing/signer.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/test_util.h"

namespace sessiontoken::keyring {
namespace {

using ::sessiontoken::testing::IsOk;
using ::testing::Not;

using format::VerifyOptions;
using format::VerifyResult;
using format::VerifyStatus;

constexpr int64_t kNow = 1800000000;
constexpr uint32_t kPrimaryId = 0x11111111, kActiveId = 0x22222222, kDisabledId = 0x33333333;

std::shared_ptr<const Key> MakeKey(uint32_t id, KeyState state, char fill, int64_t created) {
  KeyMetadata md{id, v1::HMAC_SHA256, state, absl::FromUnixSeconds(created),
                 absl::FromUnixSeconds(created)};
  auto k = Key::New(md, crypto::SecretBytes::CopyFrom(std::string(32, fill)));
  EXPECT_THAT(k, IsOk()) << k.status();
  return *k;
}

std::shared_ptr<const Keyring> TestKeyring() {
  auto kr = Keyring::New("shop", 7, absl::FromUnixSeconds(kNow - 1000),
                         {MakeKey(kPrimaryId, v1::PRIMARY, 'p', kNow - 10),
                          MakeKey(kActiveId, v1::ACTIVE, 'a', kNow - 100),
                          MakeKey(kDisabledId, v1::DISABLED, 'd', kNow - 200)});
  EXPECT_THAT(kr, IsOk()) << kr.status();
  return *kr;
}

// Signs directly with a key's material: lets the table build tokens of any shape.
std::string SignWith(char fill, uint32_t id, int64_t iat, int64_t exp, absl::string_view aud,
                     absl::string_view payload) {
  auto mac = crypto::Hmac::New(crypto::HashFunction::kSha256, std::string(32, fill));
  return token::SignNative(**mac, {id, iat, exp}, aud, payload);
}

// Flips bit 0 of decoded body byte `offset` (negative: from the end) and re-encodes.
std::string FlipBody(const std::string& t, int offset) {
  std::string body;
  EXPECT_TRUE(token::Base64UrlDecodeStrict(absl::string_view(t).substr(4), &body));
  size_t i = offset >= 0 ? static_cast<size_t>(offset) : body.size() + offset;
  body[i] ^= 0x01;
  return "st1." + token::Base64UrlEncode(body);
}

struct Case {
  std::string name;
  std::string token;
  std::string audience;
  VerifyStatus expected;
};

std::vector<Case> MalformedTable() {
  const std::string good = SignWith('p', kPrimaryId, kNow - 5, kNow + 3600, "web", "user=42");
  // 5 payload bytes: a 61-byte body, so the encoding ends in a partial group.
  const std::string odd = SignWith('p', kPrimaryId, kNow - 5, kNow + 3600, "web", "hello");
  std::string non_canonical = odd;
  non_canonical.back() =
      non_canonical.back() == 'A' ? 'B' : static_cast<char>(non_canonical.back() + 1);
  std::string plus = good, slash = good;
  plus[10] = '+';
  slash[10] = '/';
  std::string with_nul = good;
  with_nul[20] = '\0';
  std::string non_ascii = good;
  non_ascii[20] = '\xc3';
  std::string body;
  token::Base64UrlDecodeStrict(absl::string_view(good).substr(4), &body);
  std::string oversized_body =
      body.substr(0, 24) + std::string(3001, 'x') + body.substr(body.size() - 32);
  return {
      {"valid primary", good, "web", VerifyStatus::kValid},
      {"valid active key", SignWith('a', kActiveId, kNow - 5, kNow + 60, "web", "x"), "web",
       VerifyStatus::kValid},
      {"empty", "", "web", VerifyStatus::kMalformed},
      {"prefix only", "st1.", "web", VerifyStatus::kMalformed},
      {"no prefix", good.substr(4), "web", VerifyStatus::kMalformed},
      {"bad version", "st2." + good.substr(4), "web", VerifyStatus::kMalformed},
      {"upper-case prefix", "ST1." + good.substr(4), "web", VerifyStatus::kMalformed},
      {"truncated below minimum", good.substr(0, 60), "web", VerifyStatus::kMalformed},
      {"truncated one char", odd.substr(0, odd.size() - 1), "web", VerifyStatus::kMalformed},
      {"truncated one group", good.substr(0, good.size() - 4), "web", VerifyStatus::kBadSignature},
      {"extra dot inside", good.substr(0, 30) + "." + good.substr(30), "web",
       VerifyStatus::kMalformed},
      {"trailing dot", good + ".", "web", VerifyStatus::kMalformed},
      {"two sections", good + ".abc", "web", VerifyStatus::kMalformed},
      {"leading dot", "." + good, "web", VerifyStatus::kMalformed},
      {"padding", odd + "=", "web", VerifyStatus::kMalformed},
      {"non-canonical last char", non_canonical, "web", VerifyStatus::kMalformed},
      {"standard alphabet +", plus, "web", VerifyStatus::kMalformed},
      {"standard alphabet /", slash, "web", VerifyStatus::kMalformed},
      {"trailing newline", good + "\n", "web", VerifyStatus::kMalformed},
      {"inner space", good.substr(0, 30) + " " + good.substr(31), "web", VerifyStatus::kMalformed},
      {"NUL byte", with_nul, "web", VerifyStatus::kMalformed},
      {"non-ASCII byte", non_ascii, "web", VerifyStatus::kMalformed},
      {"oversize token", "st1." + std::string(5000, 'A'), "web", VerifyStatus::kMalformed},
      {"payload over format limit", "st1." + token::Base64UrlEncode(oversized_body), "web",
       VerifyStatus::kMalformed},
      {"issued after expiry", SignWith('p', kPrimaryId, kNow, kNow - 1, "web", "x"), "web",
       VerifyStatus::kMalformed},
      {"unknown key id", SignWith('z', 0x44444444, kNow - 5, kNow + 60, "web", "x"), "web",
       VerifyStatus::kUnknownKey},
      {"key disabled", SignWith('d', kDisabledId, kNow - 5, kNow + 60, "web", "x"), "web",
       VerifyStatus::kKeyDisabled},
      {"wrong audience", good, "api", VerifyStatus::kWrongAudience},
      {"empty audience expected", good, "", VerifyStatus::kWrongAudience},
      {"expired exactly now", SignWith('p', kPrimaryId, kNow - 60, kNow, "web", "x"), "web",
       VerifyStatus::kExpired},
      {"expired long ago", SignWith('p', kPrimaryId, 1000, 2000, "web", "x"), "web",
       VerifyStatus::kExpired},
      {"issued in the future", SignWith('p', kPrimaryId, kNow + 31, kNow + 3600, "web", "x"), "web",
       VerifyStatus::kNotYetValid},
      {"future within skew", SignWith('p', kPrimaryId, kNow + 30, kNow + 3600, "web", "x"), "web",
       VerifyStatus::kValid},
      {"same id, other keyring's material",
       SignWith('q', kPrimaryId, kNow - 5, kNow + 60, "web", "x"), "web",
       VerifyStatus::kBadSignature},
      {"flipped bit in key id", FlipBody(good, 3), "web", VerifyStatus::kUnknownKey},
      {"flipped bit in issued-at", FlipBody(good, 11), "web", VerifyStatus::kBadSignature},
      {"flipped bit in expiry", FlipBody(good, 19), "web", VerifyStatus::kBadSignature},
      {"flipped bit in audience tag", FlipBody(good, 20), "web", VerifyStatus::kWrongAudience},
      {"flipped bit in payload", FlipBody(good, 24), "web", VerifyStatus::kBadSignature},
      {"flipped bit in MAC (first)", FlipBody(good, -32), "web", VerifyStatus::kBadSignature},
      {"flipped bit in MAC (last)", FlipBody(good, -1), "web", VerifyStatus::kBadSignature},
  };
}

TEST(KeyringVerifyTest, MalformedTokenTable) {
  auto kr = TestKeyring();
  const std::vector<Case> table = MalformedTable();
  ASSERT_GE(table.size(), 25u);
  for (const Case& c : table) {
    VerifyResult r = Signer(kr)->Verify(c.token, c.audience, absl::FromUnixSeconds(kNow));
    EXPECT_EQ(VerifyStatusName(r.status), VerifyStatusName(c.expected)) << c.name;
    if (r.status == VerifyStatus::kValid) {
      EXPECT_FALSE(r.payload.empty()) << c.name;
    } else {
      EXPECT_TRUE(r.payload.empty()) << c.name << ": payload must not leak on failure";
      EXPECT_FALSE(r.refresh_recommended) << c.name;
    }
  }
}

// A v2 token signed directly with a key's material: any subject, token id, sealed or not.
std::string SignV2With(char fill, uint32_t id, int64_t iat, int64_t exp, absl::string_view aud,
                       absl::string_view subject, absl::string_view payload, bool sealed) {
  const std::string material(32, fill);
  auto mac = crypto::Hmac::New(crypto::HashFunction::kSha256, material);
  auto aead = token::DeriveSealKey(material);
  const std::string token_id(token::kTokenIdSize, '\x5a'), nonce(12, '\x01');
  token::PayloadSeal seal{aead->get(), nonce};
  auto t = token::SignNativeV2(**mac, {id, iat, exp}, {token_id, subject}, aud, payload,
                               sealed ? &seal : nullptr);
  EXPECT_THAT(t, IsOk());
  return t.ok() ? *t : std::string();
}

// Flips bit `bit` of decoded body byte `offset` (negative: from the end) of a v2 token.
std::string FlipV2(const std::string& t, int offset, int bit = 0) {
  std::string body;
  EXPECT_TRUE(token::Base64UrlDecodeStrict(absl::string_view(t).substr(4), &body));
  size_t i = offset >= 0 ? static_cast<size_t>(offset) : body.size() + offset;
  body[i] ^= static_cast<char>(1 << bit);
  return "st2." + token::Base64UrlEncode(body);
}

// A v2 token whose decoded body lost its last `n` bytes (re-encoded canonically).
std::string Truncated(const std::string& t, size_t n) {
  std::string body;
  EXPECT_TRUE(token::Base64UrlDecodeStrict(absl::string_view(t).substr(4), &body));
  return "st2." + token::Base64UrlEncode(body.substr(0, body.size() - n));
}

std::vector<Case> MalformedV2Table() {
  constexpr absl::string_view kSecret = "card=4111111111111111;role=admin";
  const std::string clear =
      SignV2With('p', kPrimaryId, kNow - 5, kNow + 3600, "web", "u-42", "user=42", false);
  const std::string sealed =
      SignV2With('p', kPrimaryId, kNow - 5, kNow + 3600, "web", "u-42", kSecret, true);
  const int header = static_cast<int>(token::kV2FixedHeaderSize) + 4;  // subject "u-42"
  const int flags = static_cast<int>(token::kNativeHeaderSize);
  const int nonce = header, ciphertext = header + 12, tag = -32 - 16;
  return {
      {"v2 valid", clear, "web", VerifyStatus::kValid},
      {"v2 sealed valid", sealed, "web", VerifyStatus::kValid},
      {"v2 sealed, active key", SignV2With('a', kActiveId, kNow, kNow + 9, "web", "", "x", true),
       "web", VerifyStatus::kValid},
      {"v2 sealed, key disabled",
       SignV2With('d', kDisabledId, kNow, kNow + 9, "web", "", "x", true), "web",
       VerifyStatus::kKeyDisabled},
      {"v2 sealed, expired", SignV2With('p', kPrimaryId, 1000, 2000, "web", "", "x", true), "web",
       VerifyStatus::kExpired},
      {"v2 sealed, wrong audience", sealed, "api", VerifyStatus::kWrongAudience},
      {"v2 sealed, other material",
       SignV2With('q', kPrimaryId, kNow, kNow + 9, "web", "", "x", true), "web",
       VerifyStatus::kBadSignature},
      {"v2 unknown version", "st3." + clear.substr(4), "web", VerifyStatus::kMalformed},
      {"v2 unknown flag", FlipV2(clear, flags, 1), "web", VerifyStatus::kMalformed},
      {"v2 sealed flag cleared", FlipV2(sealed, flags), "web", VerifyStatus::kBadSignature},
      {"v2 sealed flag set on a short clear token", FlipV2(clear, flags), "web",
       VerifyStatus::kMalformed},
      {"v2 truncated by 3 bytes", Truncated(sealed, 3), "web", VerifyStatus::kBadSignature},
      // 32-byte sealed payload: cutting 73 bytes leaves less than a nonce and a tag.
      {"v2 sealed, too short for nonce and tag", Truncated(sealed, 73), "web",
       VerifyStatus::kMalformed},
      {"v2 flipped bit in key id", FlipV2(sealed, 3), "web", VerifyStatus::kUnknownKey},
      {"v2 flipped bit in issued-at", FlipV2(sealed, 11), "web", VerifyStatus::kBadSignature},
      {"v2 flipped bit in expiry", FlipV2(sealed, 19), "web", VerifyStatus::kBadSignature},
      {"v2 flipped bit in audience tag", FlipV2(sealed, 20), "web", VerifyStatus::kWrongAudience},
      {"v2 flipped bit in token id", FlipV2(sealed, flags + 1), "web", VerifyStatus::kBadSignature},
      {"v2 flipped bit in subject length", FlipV2(sealed, header - 5), "web",
       VerifyStatus::kBadSignature},
      {"v2 flipped bit in subject", FlipV2(sealed, header - 1), "web", VerifyStatus::kBadSignature},
      {"v2 flipped bit in nonce (first)", FlipV2(sealed, nonce), "web",
       VerifyStatus::kBadSignature},
      {"v2 flipped bit in nonce (last)", FlipV2(sealed, nonce + 11, 7), "web",
       VerifyStatus::kBadSignature},
      {"v2 flipped bit in ciphertext", FlipV2(sealed, ciphertext), "web",
       VerifyStatus::kBadSignature},
      {"v2 flipped bit in ciphertext (last)", FlipV2(sealed, tag - 1, 7), "web",
       VerifyStatus::kBadSignature},
      {"v2 flipped bit in GCM tag (first)", FlipV2(sealed, tag), "web",
       VerifyStatus::kBadSignature},
      {"v2 flipped bit in GCM tag (last)", FlipV2(sealed, -33, 7), "web",
       VerifyStatus::kBadSignature},
      {"v2 flipped bit in MAC", FlipV2(sealed, -1), "web", VerifyStatus::kBadSignature},
  };
}

// Sealed tokens with a flipped bit anywhere give BAD_SIGNATURE or MALFORMED (or the
// header's diagnoses), never a payload; valid ones give the plaintext, which the token
// never carries in clear.
TEST(KeyringVerifyTest, MalformedV2TokenTable) {
  auto kr = TestKeyring();
  const std::vector<Case> table = MalformedV2Table();
  for (const Case& c : table) {
    VerifyResult r = Signer(kr)->Verify(c.token, c.audience, absl::FromUnixSeconds(kNow));
    EXPECT_EQ(VerifyStatusName(r.status), VerifyStatusName(c.expected)) << c.name;
    if (r.status == VerifyStatus::kValid) {
      EXPECT_FALSE(r.payload.empty()) << c.name;
      EXPECT_EQ(r.token_id, token::Base64UrlEncode(std::string(16, '\x5a'))) << c.name;
    } else {
      EXPECT_TRUE(r.payload.empty()) << c.name << ": payload must not leak on failure";
      EXPECT_FALSE(r.refresh_recommended) << c.name;
    }
  }
  VerifyResult r = Signer(kr)->Verify(table[1].token, "web", absl::FromUnixSeconds(kNow));
  EXPECT_EQ(r.payload, "card=4111111111111111;role=admin");
  EXPECT_EQ(r.subject, "u-42");
  EXPECT_EQ(r.issued_at, kNow - 5);
  EXPECT_EQ(table[1].token.find(token::Base64UrlEncode("card=4111")), std::string::npos);
}

// Every single-bit flip of a sealed token (all bytes, all bits) is refused without a payload.
TEST(KeyringVerifyTest, EveryBitFlipOfASealedTokenIsRefused) {
  auto kr = TestKeyring();
  const std::string sealed =
      SignV2With('p', kPrimaryId, kNow - 5, kNow + 3600, "web", "u-42", "secret-payload", true);
  std::string body;
  ASSERT_TRUE(token::Base64UrlDecodeStrict(absl::string_view(sealed).substr(4), &body));
  auto signer = Signer(kr);
  for (int i = 0; i < static_cast<int>(body.size()); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      VerifyResult r = signer->Verify(FlipV2(sealed, i, bit), "web", absl::FromUnixSeconds(kNow));
      EXPECT_NE(r.status, VerifyStatus::kValid) << i << "/" << bit;
      EXPECT_TRUE(r.payload.empty()) << i << "/" << bit;
    }
  }
}

TEST(KeyringVerifyTest, RefreshRecommendedOnlyForNonPrimaryKeys) {
  auto kr = TestKeyring();
  auto t1 = SignWith('p', kPrimaryId, kNow, kNow + 60, "", "a");
  auto t2 = SignWith('a', kActiveId, kNow, kNow + 60, "", "b");
  VerifyResult r1 = Signer(kr)->Verify(t1, "", absl::FromUnixSeconds(kNow));
  VerifyResult r2 = Signer(kr)->Verify(t2, "", absl::FromUnixSeconds(kNow));
  ASSERT_EQ(r1.status, VerifyStatus::kValid);
  ASSERT_EQ(r2.status, VerifyStatus::kValid);
  EXPECT_FALSE(r1.refresh_recommended);
  EXPECT_TRUE(r2.refresh_recommended);
  EXPECT_EQ(r1.payload, "a");
  EXPECT_EQ(r2.key_id, kActiveId);
}

// The documented WRONG_AUDIENCE contract (docs/token-format.md): the audience tag is not
// authenticated, so a fabricated token naming a real key with a foreign tag gets
// WRONG_AUDIENCE exactly like a genuine token for another audience. It is a diagnosis of an
// invalid token, never an acceptance and never proof the token is genuine.
TEST(KeyringVerifyTest, WrongAudienceIsAnUnauthenticatedDiagnosis) {
  auto kr = TestKeyring();
  const std::string genuine = SignWith('p', kPrimaryId, kNow, kNow + 60, "api", "data");
  // Same key id, times, tag and payload, but a MAC made with a key nobody here holds.
  const std::string forged = SignWith('z', kPrimaryId, kNow, kNow + 60, "api", "data");
  for (const std::string& t : {genuine, forged}) {
    VerifyResult r = Signer(kr)->Verify(t, "web", absl::FromUnixSeconds(kNow));
    EXPECT_EQ(r.status, VerifyStatus::kWrongAudience);
    EXPECT_TRUE(r.payload.empty());
    EXPECT_EQ(r.issued_at, 0);  // nothing of an unverified token is reported as checked
  }
  // With the caller's own tag, the forgery is a plain BAD_SIGNATURE.
  EXPECT_EQ(Signer(kr)
                ->Verify(SignWith('z', kPrimaryId, kNow, kNow + 60, "web", "data"), "web",
                         absl::FromUnixSeconds(kNow))
                .status,
            VerifyStatus::kBadSignature);
}

TEST(KeyringSignTest, SignsWithPrimaryAndBindsTimes) {
  auto kr = TestKeyring();
  auto s = Signer(kr)->Sign("data", "web", absl::FromUnixSeconds(kNow), absl::Minutes(5));
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->key_id, kPrimaryId);
  EXPECT_EQ(s->issued_at, kNow);
  EXPECT_EQ(s->expires_at, kNow + 300);
  // A v2 token: the claims and a fresh 128-bit token id, MACed with the primary's material.
  auto parsed = token::ParseNative(s->token);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->version, 2);
  EXPECT_EQ(parsed->claims.key_id, kPrimaryId);
  EXPECT_EQ(parsed->claims.issued_at, kNow);
  EXPECT_EQ(parsed->claims.expires_at, kNow + 300);
  EXPECT_FALSE(parsed->sealed());
  EXPECT_EQ(parsed->payload(), "data");
  EXPECT_EQ(s->token_id, token::Base64UrlEncode(parsed->token_id()));
  auto mac = crypto::Hmac::New(crypto::HashFunction::kSha256, std::string(32, 'p'));
  EXPECT_TRUE(token::CheckNativeMac(**mac, *parsed, "web"));
  auto again = Signer(kr)->Sign("data", "web", absl::FromUnixSeconds(kNow), absl::Minutes(5));
  EXPECT_NE(again->token_id, s->token_id);
  EXPECT_EQ(Signer(kr)->Verify(s->token, "web", absl::FromUnixSeconds(kNow + 299)).status,
            VerifyStatus::kValid);
  EXPECT_EQ(Signer(kr)->Verify(s->token, "web", absl::FromUnixSeconds(kNow + 300)).status,
            VerifyStatus::kExpired);
  // Payload, audience and TTL limits are checked where requests enter the core: the engine
  // (engine_test.cc, RequestErrorsNameTheField).
}

TEST(KeyringRotateTest, NewPrimaryOldActiveRevisionBumped) {
  auto kr = Keyring::Create("default", absl::FromUnixSeconds(kNow));
  ASSERT_THAT(kr, IsOk());
  EXPECT_EQ((*kr)->revision(), 1u);
  const uint32_t old_id = (*kr)->primary().id();
  auto old_token = Signer((*kr))->Sign("p", "", absl::FromUnixSeconds(kNow), absl::Hours(1));
  uint32_t new_id = 0;
  auto next = Rotate(*(*kr), absl::FromUnixSeconds(kNow + 10), /*promote=*/true, &new_id);
  ASSERT_THAT(next, IsOk());
  EXPECT_NE(new_id, old_id);
  EXPECT_EQ((*next)->revision(), 2u);
  EXPECT_EQ((*next)->primary().id(), new_id);
  EXPECT_EQ((*next)->Find(old_id)->state(), v1::ACTIVE);
  EXPECT_EQ((*next)->keys().front()->id(), new_id);  // newest first
  // The old snapshot is untouched (immutability).
  EXPECT_EQ((*kr)->primary().id(), old_id);
  VerifyResult r = Signer((*next))->Verify(old_token->token, "", absl::FromUnixSeconds(kNow + 20));
  EXPECT_EQ(r.status, VerifyStatus::kValid);
  EXPECT_TRUE(r.refresh_recommended);
  auto fresh = Signer((*next))->Sign("p", "", absl::FromUnixSeconds(kNow + 20), absl::Hours(1));
  EXPECT_EQ(fresh->key_id, new_id);
}

TEST(KeyringTest, InvariantsAreEnforced) {
  auto p1 = MakeKey(1, v1::PRIMARY, 'a', kNow);
  auto p2 = MakeKey(2, v1::PRIMARY, 'b', kNow);
  auto a1 = MakeKey(1, v1::ACTIVE, 'c', kNow);
  auto a3 = MakeKey(3, v1::ACTIVE, 'c', kNow);
  EXPECT_THAT(Keyring::New("x", 1, absl::Now(), {p1, p2}), Not(IsOk()));  // two primaries
  EXPECT_THAT(Keyring::New("x", 1, absl::Now(), {a3}), Not(IsOk()));      // no primary
  EXPECT_THAT(Keyring::New("x", 1, absl::Now(), {p1, a1}), Not(IsOk()));  // duplicate id
  EXPECT_THAT(Keyring::New("Bad Name", 1, absl::Now(), {p1}), Not(IsOk()));
  EXPECT_THAT(Keyring::New("x", 1, absl::Now(), {p1, a3}), IsOk());
  EXPECT_THAT(Key::New({0, v1::HMAC_SHA256, v1::PRIMARY, absl::Now(), absl::Now()},
                       crypto::SecretBytes::CopyFrom(std::string(32, 'k'))),
              Not(IsOk()));
  EXPECT_THAT(
      Key::New({5, v1::HMAC_SHA256, v1::PRIMARY, absl::Now(), absl::Now()}, crypto::SecretBytes()),
      Not(IsOk()));
}

TEST(KeyringTest, KeyringNames) {
  EXPECT_THAT(ValidateKeyringName("default"), IsOk());
  EXPECT_THAT(ValidateKeyringName("shop-eu_2"), IsOk());
  EXPECT_THAT(ValidateKeyringName(std::string(63, 'a')), IsOk());
  EXPECT_THAT(ValidateKeyringName(""), Not(IsOk()));
  EXPECT_THAT(ValidateKeyringName(std::string(64, 'a')), Not(IsOk()));
  EXPECT_THAT(ValidateKeyringName("Shop"), Not(IsOk()));
  EXPECT_THAT(ValidateKeyringName("../etc"), Not(IsOk()));
  EXPECT_THAT(ValidateKeyringName("a/b"), Not(IsOk()));
  EXPECT_THAT(ValidateKeyringName("-x"), Not(IsOk()));
}

TEST(KeyringTest, StoredFormRoundTripsAndIsWiped) {
  auto kr = TestKeyring();
  v1::StoredKeyring stored;
  ToStored(*kr, &stored);
  ASSERT_EQ(stored.keys_size(), 3);
  auto back = FromStored(&stored);
  ASSERT_THAT(back, IsOk()) << back.status();
  for (const auto& k : stored.keys()) EXPECT_EQ(k.material(), std::string(32, '\0'));
  EXPECT_EQ((*back)->name(), "shop");
  EXPECT_EQ((*back)->revision(), 7u);
  EXPECT_EQ((*back)->primary().id(), kPrimaryId);
  EXPECT_EQ((*back)->Find(kDisabledId)->state(), v1::DISABLED);
  auto t = SignWith('a', kActiveId, kNow, kNow + 60, "", "x");
  EXPECT_EQ(Signer((*back))->Verify(t, "", absl::FromUnixSeconds(kNow)).status,
            VerifyStatus::kValid);
}

}  // namespace
}  // namespace sessiontoken::keyring

namespace sessiontoken::keyring {
namespace {

struct FlaskVector {
  std::string name, secret, salt, payload, cookie;
  int64_t timestamp;
};

std::vector<FlaskVector> LoadFlaskVectors() {
  std::string json = sessiontoken::testing::ReadFile(std::string(SESSIONTOKEN_SOURCE_DIR) +
                                                     "/tests/vectors/flask_v1.json");
  google::protobuf::Struct root;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &root).ok());
  std::vector<FlaskVector> out;
  for (const auto& v : root.fields().at("vectors").list_value().values()) {
    const auto& f = v.struct_value().fields();
    out.push_back(
        {f.at("name").string_value(), sessiontoken::testing::Hex(f.at("secret_hex").string_value()),
         f.at("salt").string_value(),
         sessiontoken::testing::Hex(f.at("payload_hex").string_value()),
         f.at("cookie").string_value(), static_cast<int64_t>(f.at("timestamp").number_value())});
  }
  return out;
}

// Migration: a real Flask cookie verifies once its SECRET_KEY is imported as a legacy
// (ACTIVE) key of a native keyring, with refresh_recommended; promoted, the same key signs
// cookies byte-identical to real Flask's.
TEST(KeyringFlaskTest, ImportedFlaskSecretVerifiesAndSignsLikeFlask) {
  std::vector<FlaskVector> vectors = LoadFlaskVectors();
  ASSERT_GE(vectors.size(), 5u);
  for (const FlaskVector& v : vectors) {
    SCOPED_TRACE(v.name);
    const absl::Time t = absl::FromUnixSeconds(v.timestamp);
    auto ring = *Keyring::Create("app", t);
    uint32_t id = 0;
    auto migrated = Import(*ring, v1::HMAC_SHA1_FLASK, v.secret, v1::ACTIVE, t, &id);
    ASSERT_THAT(migrated, IsOk()) << migrated.status();
    VerifyResult r = Signer((*migrated))->Verify(v.cookie, v.salt, t + absl::Minutes(1));
    ASSERT_EQ(VerifyStatusName(r.status), "VALID");
    EXPECT_EQ(r.key_id, id);
    EXPECT_EQ(r.payload, v.payload);
    EXPECT_EQ(r.issued_at, v.timestamp);
    EXPECT_TRUE(r.refresh_recommended);
    // Wrong salt, tampering, expiry, disabled key.
    EXPECT_EQ(Signer((*migrated))->Verify(v.cookie, v.salt + "x", t).status,
              VerifyStatus::kBadSignature);
    std::string tampered = v.cookie;
    tampered[tampered.size() - 2] = tampered[tampered.size() - 2] == 'A' ? 'B' : 'A';
    EXPECT_NE(Signer((*migrated))->Verify(tampered, v.salt, t).status, VerifyStatus::kValid);
    VerifyOptions short_age;
    short_age.max_age = absl::Seconds(30);
    EXPECT_EQ(
        Signer((*migrated))->Verify(v.cookie, v.salt, t + absl::Seconds(31), short_age).status,
        VerifyStatus::kExpired);
    EXPECT_EQ(
        Signer((*migrated))->Verify(v.cookie, v.salt, t + absl::Seconds(30), short_age).status,
        VerifyStatus::kValid);
    auto disabled = Disable(*(*migrated), id, t);
    EXPECT_EQ(Signer((*disabled))->Verify(v.cookie, v.salt, t).status, VerifyStatus::kKeyDisabled);
    // A keyring without Flask keys does not know such cookies.
    EXPECT_EQ(Signer(ring)->Verify(v.cookie, v.salt, t).status, VerifyStatus::kUnknownKey);
    // Promoted, it signs exactly what Flask signs.
    auto promoted = Promote(*(*migrated), id, t);
    ASSERT_THAT(promoted, IsOk());
    auto signed_now = Signer((*promoted))->Sign(v.payload, v.salt, t, absl::Hours(1));
    ASSERT_THAT(signed_now, IsOk()) << signed_now.status();
    EXPECT_EQ(signed_now->token, v.cookie);
    EXPECT_FALSE(Signer((*promoted))->Verify(v.cookie, v.salt, t).refresh_recommended);
  }
}

// Found by fuzz_flask (tests/fuzz/crashes/flask): time sums must not overflow.
TEST(KeyringFlaskTest, HugeMaxAgeAndTimestampDoNotOverflow) {
  const absl::Time t = absl::FromUnixSeconds(1767225600);
  auto ring = *Keyring::Create("app", t);
  uint32_t id = 0;
  ring = *Import(*ring, v1::HMAC_SHA1_FLASK, "dev-secret", v1::ACTIVE, t, &id);
  VerifyOptions o;
  o.max_age = absl::Seconds(std::numeric_limits<int64_t>::max());
  o.max_clock_skew = absl::Seconds(std::numeric_limits<int64_t>::max());
  VerifyResult r = Signer(ring)->Verify("eyJ1c2VyX2lkIjo0Mn0.aVW5AA.4VlxZ3LcgASP27ZY9TgGpKiZIro",
                                        "cookie-session", t, o);
  EXPECT_EQ(r.status, VerifyStatus::kValid);
  EXPECT_EQ(r.expires_at, std::numeric_limits<int64_t>::max());
  auto signer = *token::DeriveFlaskSigner("dev-secret", token::kFlaskDefaultSalt);
  std::string far = token::SignFlask(*signer, "{}", std::numeric_limits<int64_t>::max() - 5);
  EXPECT_EQ(Signer(ring)->Verify(far, "cookie-session", t).status, VerifyStatus::kNotYetValid);
}

}  // namespace
}  // namespace sessiontoken::keyring
