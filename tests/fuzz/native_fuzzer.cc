// Fuzz target "native": token::ParseNative / CheckNativeMac / SignNative / SignNativeV2 and
// Keyring::Verify (which routes to both formats) on a fixed keyring.
//
// Each input is used three times:
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
//  3. As the parameters of a v2 token (subject, token id, clear or sealed payload): see
//     CheckSignedTokenV2.
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

// Re-signs a parsed token whose MAC checked under `aud` (its key, or kDefaultKeyId's): v1
// with SignNative, v2 with SignNativeV2 (a sealed payload opened, then sealed again with the
// token's own nonce). Empty when a sealed payload does not open.
std::string Resign(const token::ParsedNativeToken& t, absl::string_view aud) {
  const FixtureKey* key = FindFixtureKey(t.claims.key_id);
  if (NativeMac(t.claims.key_id) == nullptr) key = FindFixtureKey(kDefaultKeyId);
  const crypto::Hmac& mac = *NativeMac(key->id);
  if (t.version == 1) return token::SignNative(mac, t.claims, aud, t.payload());
  const token::NativeSession session{t.token_id(), t.subject()};
  if (!t.sealed()) {
    return *token::SignNativeV2(mac, t.claims, session, aud, t.payload(), nullptr);
  }
  auto aead = token::DeriveSealKey(key->material);
  FUZZ_CHECK(aead.ok());
  absl::StatusOr<crypto::SecretBytes> plain = token::OpenSealedPayload(**aead, t, aud);
  if (!plain.ok()) return "";
  const token::PayloadSeal seal{aead->get(), t.payload().substr(0, 12)};
  return *token::SignNativeV2(mac, t.claims, session, aud, plain->view(), &seal);
}

void CheckReceivedToken(absl::string_view tok) {
  std::optional<token::ParsedNativeToken> parsed = token::ParseNative(tok);
  std::optional<ModelNativeToken> model = ModelParseNative(tok);
  FUZZ_CHECK(parsed.has_value() == model.has_value());
  bool mac_checked = false;
  if (parsed.has_value()) {
    FUZZ_CHECK(tok.size() <= token::kMaxTokenSize);
    // Exactly one encoding per body: re-encoding gives the input back.
    FUZZ_CHECK(absl::StrCat(parsed->prefix(), token::Base64UrlEncode(parsed->view())) == tok);
    FUZZ_CHECK(parsed->version == model->version && parsed->sealed() == model->sealed);
    FUZZ_CHECK(parsed->token_id() == model->token_id && parsed->subject() == model->subject);
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
      FUZZ_CHECK(ok == (ModelNativeMac(*mac, aud, parsed->signed_part(), parsed->prefix()) ==
                        parsed->mac()));
      if (ok) {
        mac_checked = true;
        // A genuine token is exactly what the codec makes of its claims.
        FUZZ_CHECK(Resign(*parsed, aud) == tok);
        FUZZ_CHECK(token::AudienceTag(aud) == parsed->audience_tag());
      }
    }
  }

  if (token::HasNativePrefix(tok)) {
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

// A v2 token the service signs itself: any subject, token id, audience and payload, clear or
// sealed (fresh nonce from the input). Properties: it parses back to the same claims and
// session; Keyring::Verify agrees with the model (which opens sealed payloads on its own);
// a sealed token never carries its payload in clear; any one-character change is never VALID
// and never yields a payload.
void CheckSignedTokenV2(const uint8_t* data, size_t size) {
  FuzzedDataProvider p(data, size);
  const FixtureKey& key = *FindFixtureKey(kDefaultKeyId);  // the PRIMARY native key
  const bool sealed = p.ConsumeBool();
  const std::string token_id = p.ConsumeBytesAsString(token::kTokenIdSize);
  const std::string nonce = p.ConsumeBytesAsString(12);
  const size_t tamper_pos = p.ConsumeIntegral<size_t>();
  const char tamper_char = p.ConsumeIntegral<char>();
  const std::string subject = p.ConsumeRandomLengthString(token::kMaxSubjectSize);
  const std::string audience = p.ConsumeRandomLengthString(token::kMaxAudienceSize);
  const std::string payload = p.ConsumeRandomLengthString(2048);
  if (token_id.size() != token::kTokenIdSize || nonce.size() != 12) return;
  const token::NativeClaims claims{key.id, kFixtureNow - 10, kFixtureNow + 3600};
  auto aead = token::DeriveSealKey(key.material);
  FUZZ_CHECK(aead.ok());
  const token::PayloadSeal seal{aead->get(), nonce};
  auto tok = token::SignNativeV2(*NativeMac(key.id), claims, {token_id, subject}, audience, payload,
                                 sealed ? &seal : nullptr);
  FUZZ_CHECK(tok.ok());
  FUZZ_CHECK(tok->size() == token::NativeV2TokenSize(subject.size(), payload.size(), sealed));
  FUZZ_CHECK(tok->size() <= token::kMaxTokenSize);
  std::optional<token::ParsedNativeToken> parsed = token::ParseNative(*tok);
  FUZZ_CHECK(parsed.has_value() && parsed->version == 2 && parsed->sealed() == sealed);
  FUZZ_CHECK(parsed->token_id() == token_id && parsed->subject() == subject);
  FUZZ_CHECK(parsed->claims.issued_at == claims.issued_at);
  // Not in clear after the header (the header carries the subject and token id in clear by
  // design: a payload that repeats part of the subject is found there, and that is no leak).
  if (sealed && payload.size() >= 16) {
    FUZZ_CHECK(!absl::StrContains(parsed->view().substr(parsed->header_size), payload));
  }
  format::VerifyResult r = CheckVerify(*tok, audience, kFixtureNow);
  FUZZ_CHECK(r.status == VerifyStatus::kValid && r.payload == payload && r.subject == subject);
  std::string tampered = *tok;
  tampered[tamper_pos % tampered.size()] = tamper_char;
  if (tampered != *tok) {
    format::VerifyResult t = CheckVerify(tampered, audience, kFixtureNow);
    FUZZ_CHECK(t.status != VerifyStatus::kValid && t.payload.empty());
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
  sessiontoken::fuzz::CheckSignedTokenV2(data, size);
  return 0;
}
