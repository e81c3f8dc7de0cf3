// Fuzz target "native": token::ParseNative / CheckNativeMac / SignNative and
// Keyring::Verify (which routes to both formats) on a fixed keyring.
//
// Each input is used twice:
//  1. As a token as received from a client. Properties: ParseNative accepts exactly what
//     the documented strict grammar accepts (an independent model built on Abseil's base64)
//     and returns the same fields; an accepted token is the one encoding of its body; a
//     token whose MAC checks under a fixed key re-signs to itself byte for byte; no string
//     is both a native and a Flask token; Keyring::Verify agrees field by field with a model
//     of the documented verification order, for every fixture audience.
//  2. As the parameters of a token the service signs itself (key, key id named, times,
//     audience, payload, one tampered character). Properties: it parses back to the same
//     claims, verifies with its audience only, Keyring::Verify agrees with the model, and
//     any one-character change is never VALID.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/keyring/keyring.h"
#include "server/token/base64url.h"
#include "server/token/flask.h"
#include "server/token/native.h"
#include "tests/fuzz/fixture.h"
#include "tests/fuzz/fuzz_check.h"

namespace sessiontoken::fuzz {
namespace {

using format::VerifyStatus;

// The key used for tokens naming an unknown key id.
constexpr uint32_t kDefaultKeyId = 3735928559u;

void CheckReceivedToken(absl::string_view tok) {
  std::optional<token::ParsedNativeToken> parsed = token::ParseNative(tok);
  std::optional<ModelNativeToken> model = ModelParseNative(tok);
  FUZZ_CHECK(parsed.has_value() == model.has_value());
  bool mac_checked = false;
  if (parsed.has_value()) {
    FUZZ_CHECK(tok.size() <= token::kMaxTokenSize);
    // Exactly one encoding per body: re-encoding gives the input back.
    FUZZ_CHECK(absl::StrCat(token::kNativePrefix, token::Base64UrlEncode(absl::string_view(
                                                      parsed->body.data(), parsed->body.size()))) ==
               tok);
    FUZZ_CHECK(parsed->claims.key_id == model->key_id);
    FUZZ_CHECK(parsed->claims.issued_at == model->issued_at);
    FUZZ_CHECK(parsed->claims.expires_at == model->expires_at);
    FUZZ_CHECK(parsed->claims.issued_at >= 0 &&
               parsed->claims.expires_at >= parsed->claims.issued_at);
    FUZZ_CHECK(parsed->audience_tag() == model->audience_tag);
    FUZZ_CHECK(parsed->payload() == model->payload);
    FUZZ_CHECK(parsed->payload().size() <= token::kMaxPayloadSize);
    FUZZ_CHECK(parsed->signed_part() == model->signed_part);
    FUZZ_CHECK(parsed->mac() == model->mac);
    // The two formats never overlap, and Verify dispatches native tokens to native.
    FUZZ_CHECK(!token::LooksLikeFlask(tok));
    FUZZ_CHECK(!token::ParseFlask(tok).has_value());

    const crypto::Hmac* mac = NativeMac(parsed->claims.key_id);
    if (mac == nullptr) mac = NativeMac(kDefaultKeyId);
    for (const std::string& aud : FixtureAudiences()) {
      const bool ok = token::CheckNativeMac(*mac, *parsed, aud);
      FUZZ_CHECK(ok == (ModelNativeMac(*mac, aud, parsed->signed_part()) == parsed->mac()));
      if (ok) {
        mac_checked = true;
        // A genuine token is exactly what SignNative makes of its claims.
        FUZZ_CHECK(token::SignNative(*mac, parsed->claims, aud, parsed->payload()) == tok);
        FUZZ_CHECK(token::AudienceTag(aud) == parsed->audience_tag());
      }
    }
  }

  if (absl::StartsWith(tok, token::kNativePrefix)) {
    for (const std::string& aud : FixtureAudiences()) {
      CheckVerify(tok, aud, kFixtureNow);
      // Also at the token's own issue time, where a genuine token is VALID.
      if (mac_checked && parsed->claims.issued_at < (int64_t{1} << 62)) {
        CheckVerify(tok, aud, parsed->claims.issued_at);
      }
    }
  } else {
    // Flask-shaped or neither: one audience is enough here (fuzz_flask covers Flask).
    CheckVerify(tok, token::kFlaskDefaultSalt, kFixtureNow);
  }
}

void CheckSignedToken(const uint8_t* data, size_t size) {
  FuzzedDataProvider p(data, size);
  const std::vector<FixtureKey>& keys = FixtureKeys();
  std::vector<const FixtureKey*> signers;
  for (const FixtureKey& k : keys) {
    if (k.algorithm == v1::HMAC_SHA256 && !k.material.empty()) signers.push_back(&k);
  }
  const FixtureKey& signer = *signers[p.ConsumeIntegralInRange<size_t>(0, signers.size() - 1)];
  const crypto::Hmac& mac = *NativeMac(signer.id);

  token::NativeClaims claims;
  switch (p.ConsumeIntegralInRange(0, 2)) {
    case 0:
      claims.key_id = signer.id;
      break;
    case 1:
      claims.key_id = keys[p.ConsumeIntegralInRange<size_t>(0, keys.size() - 1)].id;
      break;
    default:
      claims.key_id = p.ConsumeIntegral<uint32_t>();
      break;
  }
  const int64_t now = kFixtureNow + p.ConsumeIntegralInRange<int64_t>(-1000000, 1000000);
  claims.issued_at = p.ConsumeBool() ? p.ConsumeIntegralInRange<int64_t>(0, INT64_MAX)
                                     : now + p.ConsumeIntegralInRange<int64_t>(-100, 100);
  claims.expires_at =
      p.ConsumeBool()
          ? p.ConsumeIntegralInRange<int64_t>(claims.issued_at, INT64_MAX)
          : claims.issued_at + p.ConsumeIntegralInRange<int64_t>(
                                   0, std::min<int64_t>(200, INT64_MAX - claims.issued_at));
  const format::VerifyOptions options = ConsumeVerifyOptions(p);
  const int64_t skew = absl::ToInt64Seconds(options.max_clock_skew);
  const size_t tamper_pos = p.ConsumeIntegral<size_t>();
  const char tamper_char = p.ConsumeIntegral<char>();
  std::string audience = p.ConsumeRandomLengthString(token::kMaxAudienceSize);
  std::string payload = p.ConsumeRandomLengthString(token::kMaxPayloadSize);

  const std::string tok = token::SignNative(mac, claims, audience, payload);
  FUZZ_CHECK(tok.size() <= token::kMaxTokenSize);
  FUZZ_CHECK(tok.size() ==
             token::kNativePrefix.size() +
                 token::Base64UrlEncodedSize(token::kNativeOverhead + payload.size()));
  std::optional<token::ParsedNativeToken> parsed = token::ParseNative(tok);
  FUZZ_CHECK(parsed.has_value());
  FUZZ_CHECK(parsed->claims.key_id == claims.key_id);
  FUZZ_CHECK(parsed->claims.issued_at == claims.issued_at);
  FUZZ_CHECK(parsed->claims.expires_at == claims.expires_at);
  FUZZ_CHECK(parsed->payload() == payload);
  FUZZ_CHECK(parsed->audience_tag() == token::AudienceTag(audience));
  FUZZ_CHECK(token::CheckNativeMac(mac, *parsed, audience));
  FUZZ_CHECK(!token::CheckNativeMac(mac, *parsed, audience + "x"));

  format::VerifyResult r = CheckVerify(tok, audience, now, options);
  const bool genuine = claims.key_id == signer.id && signer.state != v1::DISABLED;
  if (genuine && claims.issued_at <= now + skew && now < claims.expires_at) {
    FUZZ_CHECK(r.status == VerifyStatus::kValid && r.payload == payload);
  }

  // Any one-character change is rejected (strict parsing makes the encoding unique, so a
  // different text is a different body, and the MAC covers the whole body).
  std::string tampered = tok;
  tampered[tamper_pos % tok.size()] = tamper_char;
  if (tampered != tok) {
    FUZZ_CHECK(CheckVerify(tampered, audience, now, options).status != VerifyStatus::kValid);
    std::optional<token::ParsedNativeToken> t2 = token::ParseNative(tampered);
    if (t2.has_value()) FUZZ_CHECK(!token::CheckNativeMac(mac, *t2, audience));
  }
}

}  // namespace
}  // namespace sessiontoken::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sessiontoken::fuzz::FixtureKeyring();  // build the fixture once, outside the timed runs
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sessiontoken::fuzz::CheckReceivedToken(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  sessiontoken::fuzz::CheckSignedToken(data, size);
  return 0;
}
