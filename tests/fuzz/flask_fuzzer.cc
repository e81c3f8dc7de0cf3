// Fuzz target "flask": token::ParseFlask / CheckFlaskSignature / SignFlask / LooksLikeFlask,
// with fixed itsdangerous signers derived from the secrets of tests/vectors/flask_v1.json,
// and Keyring::Verify on the fixture keyring.
//
// Each input is used twice:
//  1. As a cookie as received. Properties: ParseFlask accepts exactly what its documented
//     contract accepts (an independent model: Abseil base64 + canonical re-encoding, zlib's
//     uncompress2 for compressed bodies) with the same fields; every accepted section is the
//     one encoding of its bytes; a cookie whose signature checks under a fixed signer is
//     byte for byte what SignFlask makes of its payload and timestamp (as Flask would);
//     accepted cookies look like Flask and never like native tokens; Keyring::Verify agrees
//     with the model of its documented rules.
//  2. As the parameters of a cookie signed here (key, salt, timestamp, payload, one
//     tampered character). Properties: compression is chosen exactly by itsdangerous's
//     rule, the cookie parses back to the same payload and timestamp when within the size
//     limit, Verify agrees with the model, and no one-character change is VALID.
#include <fuzzer/FuzzedDataProvider.h>
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
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

const std::vector<std::string> kSalts = {"cookie-session", "my-app.session"};

// token::DeriveFlaskSigner (the code under test) for a fixture key, cached.
const crypto::Hmac& ProjectSigner(const FixtureKey& k, const std::string& salt) {
  static auto* cache =
      new std::map<std::pair<uint32_t, std::string>, std::unique_ptr<crypto::Hmac>>();
  auto& slot = (*cache)[{k.id, salt}];
  if (slot == nullptr) {
    auto s = token::DeriveFlaskSigner(k.material, salt);
    FUZZ_CHECK(s.ok());
    slot = *std::move(s);
  }
  return *slot;
}

std::vector<const FixtureKey*> FlaskKeys() {
  std::vector<const FixtureKey*> out;
  for (const FixtureKey& k : FixtureKeys()) {
    if (k.algorithm == v1::HMAC_SHA1_FLASK && !k.material.empty()) out.push_back(&k);
  }
  return out;
}

std::string Sig(const crypto::Hmac& h, absl::string_view msg) {
  uint8_t tag[crypto::Hmac::kMaxTagSize];
  h.Compute({msg}, tag);
  return std::string(reinterpret_cast<char*>(tag), h.tag_size());
}

void CheckReceivedCookie(absl::string_view tok) {
  const size_t dots = std::count(tok.begin(), tok.end(), '.');
  FUZZ_CHECK(token::LooksLikeFlask(tok) == (dots == 2 || (dots == 3 && tok[0] == '.')));

  std::optional<token::ParsedFlaskToken> parsed = token::ParseFlask(tok);
  std::optional<ModelFlaskToken> model = ModelParseFlask(tok);
  FUZZ_CHECK(parsed.has_value() == model.has_value());
  bool signature_checked = false;
  if (parsed.has_value()) {
    FUZZ_CHECK(tok.size() <= token::kFlaskMaxTokenSize);
    FUZZ_CHECK(parsed->payload == model->payload);
    FUZZ_CHECK(parsed->payload.size() <= token::kFlaskMaxPayloadSize);
    FUZZ_CHECK(parsed->timestamp == model->timestamp && parsed->timestamp >= 0);
    FUZZ_CHECK(parsed->compressed == model->compressed);
    FUZZ_CHECK(parsed->compressed == (dots == 3));
    FUZZ_CHECK(parsed->signed_part == model->signed_part);
    FUZZ_CHECK(parsed->signature == model->signature);
    FUZZ_CHECK(parsed->signature.size() == token::kFlaskSignatureSize);
    // One encoding per value: the sections re-encode to the input.
    FUZZ_CHECK(absl::StrCat(parsed->signed_part, ".", token::Base64UrlEncode(parsed->signature)) ==
               tok);
    FUZZ_CHECK(model->timestamp_text == token::Base64UrlEncode(ModelTimestampBytes(
                                            static_cast<uint64_t>(parsed->timestamp))));
    if (!parsed->compressed) {
      FUZZ_CHECK(parsed->signed_part ==
                 absl::StrCat(token::Base64UrlEncode(parsed->payload), ".", model->timestamp_text));
    }
    // Dispatch: Verify routes every parseable cookie to the Flask codec.
    FUZZ_CHECK(token::LooksLikeFlask(tok));
    FUZZ_CHECK(!absl::StartsWith(tok, token::kNativePrefix));
    FUZZ_CHECK(!token::ParseNative(tok).has_value());

    for (const FixtureKey* k : FlaskKeys()) {
      for (const std::string& salt : kSalts) {
        const crypto::Hmac& signer = ProjectSigner(*k, salt);
        const bool ok = token::CheckFlaskSignature(signer, *parsed);
        FUZZ_CHECK(ok == (Sig(FlaskSigner(*k, salt), parsed->signed_part) == parsed->signature));
        if (ok) {
          signature_checked = true;
          // What Flask (same zlib) and SignFlask produce for this session, byte for byte.
          FUZZ_CHECK(token::SignFlask(signer, parsed->payload, parsed->timestamp) == tok);
        }
      }
    }
  }
  for (const std::string& salt : kSalts) {
    CheckVerify(tok, salt, kFixtureNow);
    if (signature_checked && parsed->timestamp < (int64_t{1} << 62)) {
      CheckVerify(tok, salt, parsed->timestamp);
    }
  }
}

// itsdangerous: compress when zlib.compress(payload) is shorter than the payload minus one.
bool ShouldCompress(absl::string_view payload) {
  uLongf size = compressBound(payload.size());
  std::string out(size, '\0');
  FUZZ_CHECK(compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                       reinterpret_cast<const Bytef*>(payload.data()), payload.size(),
                       Z_DEFAULT_COMPRESSION) == Z_OK);
  return size + 1 < payload.size();
}

void CheckSignedCookie(const uint8_t* data, size_t size) {
  FuzzedDataProvider p(data, size);
  const std::vector<const FixtureKey*> keys = FlaskKeys();
  const FixtureKey& key = *keys[p.ConsumeIntegralInRange<size_t>(0, keys.size() - 1)];
  std::string salt;
  switch (p.ConsumeIntegralInRange(0, 2)) {
    case 0:
      salt = kSalts[0];
      break;
    case 1:
      salt = kSalts[1];
      break;
    default:
      salt = p.ConsumeRandomLengthString(64);
      break;
  }
  const int64_t now = kFixtureNow + p.ConsumeIntegralInRange<int64_t>(-1000000, 1000000);
  const int64_t ts = p.ConsumeBool() ? p.ConsumeIntegralInRange<int64_t>(0, INT64_MAX)
                                     : now + p.ConsumeIntegralInRange<int64_t>(-2700000, 100);
  const format::VerifyOptions options = ConsumeVerifyOptions(p);
  const int64_t skew = absl::ToInt64Seconds(options.max_clock_skew);
  const int64_t max_age = absl::ToInt64Seconds(options.max_age);
  const size_t tamper_pos = p.ConsumeIntegral<size_t>();
  const char tamper_char = p.ConsumeIntegral<char>();
  const std::string payload = p.ConsumeRemainingBytesAsString();

  auto signer = token::DeriveFlaskSigner(key.material, salt);
  FUZZ_CHECK(signer.ok());
  // The derivation matches HMAC-SHA1(HMAC-SHA1(secret, salt), .) computed independently.
  FUZZ_CHECK(Sig(**signer, payload) == Sig(FlaskSigner(key, salt), payload));

  const std::string tok = token::SignFlask(**signer, payload, ts);
  // The compression marker is a third, leading dot (an empty payload also starts with the
  // separator dot, uncompressed).
  FUZZ_CHECK((std::count(tok.begin(), tok.end(), '.') == 3) == ShouldCompress(payload));
  std::optional<token::ParsedFlaskToken> parsed = token::ParseFlask(tok);
  if (tok.size() > token::kFlaskMaxTokenSize) {
    FUZZ_CHECK(!parsed.has_value());
    return;
  }
  FUZZ_CHECK(parsed.has_value());
  FUZZ_CHECK(parsed->payload == payload);
  FUZZ_CHECK(parsed->timestamp == ts);
  FUZZ_CHECK(token::CheckFlaskSignature(**signer, *parsed));
  FUZZ_CHECK(token::LooksLikeFlask(tok));

  format::VerifyResult r = CheckVerify(tok, salt, now, options);
  if (key.state != v1::DISABLED && ts <= now + skew && now - ts <= max_age) {
    FUZZ_CHECK(r.status == VerifyStatus::kValid && r.payload == payload);
  }

  std::string tampered = tok;
  tampered[tamper_pos % tok.size()] = tamper_char;
  if (tampered != tok) {
    FUZZ_CHECK(CheckVerify(tampered, salt, now, options).status != VerifyStatus::kValid);
    std::optional<token::ParsedFlaskToken> t2 = token::ParseFlask(tampered);
    if (t2.has_value()) FUZZ_CHECK(!token::CheckFlaskSignature(**signer, *t2));
  }
}

}  // namespace
}  // namespace sessiontoken::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sessiontoken::fuzz::FixtureKeyring();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sessiontoken::fuzz::CheckReceivedCookie(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  sessiontoken::fuzz::CheckSignedCookie(data, size);
  return 0;
}
