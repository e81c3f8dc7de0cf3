// Fixed keys, a fixed keyring and independent reference models shared by the token fuzz
// targets. The models restate the documented formats (docs/token-format.md, the header
// comment of server/token/flask.h) without calling the code under test: base64url through
// Abseil's decoder plus a canonical re-encoding check, zlib through uncompress2(), and MACs
// through crypto::Hmac directly.
#ifndef SESSIONTOKEN_TESTS_FUZZ_FIXTURE_H_
#define SESSIONTOKEN_TESTS_FUZZ_FIXTURE_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/crypto/hmac.h"
#include "server/format/keyring_signer.h"
#include "server/keyring/keyring.h"

namespace sessiontoken::fuzz {

// A key of the fixture keyring; the material comes from tests/vectors/*.json.
struct FixtureKey {
  uint32_t id;
  v1::Algorithm algorithm;
  v1::KeyState state;
  std::string material;  // empty when DESTROYED
};

// All fixture keys, newest first (the order Keyring::keys() returns them in).
const std::vector<FixtureKey>& FixtureKeys();
// The keyring "fuzz" holding FixtureKeys() (native, Flask, STAGED/ACTIVE/DISABLED/DESTROYED).
const keyring::Keyring& FixtureKeyring();
// FixtureKeyring() as the engine serves it (Sign/Verify over every format).
const format::KeyringSigner& FixtureSigner();
// The audiences of the native vectors and the salts of the Flask vectors.
const std::vector<std::string>& FixtureAudiences();
// The fixture key with this id, or null.
const FixtureKey* FindFixtureKey(uint32_t id);
// HMAC-SHA256 keyed with a native fixture key's material (null if none / destroyed).
const crypto::Hmac* NativeMac(uint32_t id);
// The itsdangerous signer HMAC-SHA1(HMAC-SHA1(secret, salt), .) of a Flask fixture key,
// computed with crypto::Hmac only (not token::DeriveFlaskSigner). Cached for the fixture
// audiences.
const crypto::Hmac& FlaskSigner(const FixtureKey& key, absl::string_view salt);

// A "now" at which some vectors are VALID (1 minute after 2026-01-01T00:00:00Z).
inline constexpr int64_t kFixtureNow = 1767225660;

// Canonical unpadded base64url decode via Abseil: true iff `in` is the one encoding of *out.
bool ModelBase64UrlDecode(absl::string_view in, std::string* out);
std::string ModelBase64UrlEncode(absl::string_view in);

// The native MAC as docs/token-format.md states it:
// HMAC-SHA256(key, prefix | be32(len(audience)) | audience | signed_part), prefix "st1." or
// "st2.".
std::string ModelNativeMac(const crypto::Hmac& mac, absl::string_view audience,
                           absl::string_view signed_part, absl::string_view prefix = "st1.");

// docs/token-format.md, "Strict parsing" (v1) and the v2 layout.
struct ModelNativeToken {
  int version = 1;
  uint32_t key_id = 0;
  int64_t issued_at = 0;
  int64_t expires_at = 0;
  bool sealed = false;                                  // v2
  std::string token_id, subject;                        // v2
  std::string header;                                   // v2: the body before the payload section
  std::string audience_tag, payload, signed_part, mac;  // payload: as carried (sealed or not)
};

// A v2 sealed payload opened as docs/token-format.md states it: AES-256-GCM under
// HKDF-SHA256(material, "", "sessiontoken st2 payload seal") (HKDF computed with crypto::Hmac,
// not the code under test), associated data "st2." | be32(len(aud)) | aud | header.
std::optional<std::string> ModelOpenSealed(absl::string_view material, absl::string_view audience,
                                           const ModelNativeToken& t);
std::optional<ModelNativeToken> ModelParseNative(absl::string_view token);

// server/token/flask.h, ParseFlask's contract; with require_payload = false,
// ParseFlaskSigned's (a compressed body that does not inflate leaves payload_ok false).
struct ModelFlaskToken {
  std::string payload;
  bool payload_ok = true;
  int64_t timestamp = 0;
  bool compressed = false;
  std::string signed_part, signature, timestamp_text;
};
std::optional<ModelFlaskToken> ModelParseFlask(absl::string_view token,
                                               bool require_payload = true);
// itsdangerous's int_to_bytes: big-endian, leading zero bytes stripped.
std::string ModelTimestampBytes(uint64_t v);

// Verify options as the service can set them: max_age as a Verify request may carry it (any
// positive whole number of seconds: tokens_service.cc checks nothing more), max_clock_skew
// as an operator would configure it (0..1 day).
format::VerifyOptions ConsumeVerifyOptions(FuzzedDataProvider& p);

// Calls FixtureSigner().Verify(token, audience, now, options) and checks every field of the
// result against a model of the documented verification order (docs/token-format.md for
// native tokens; keyring.h/flask.h for Flask cookies). Aborts on any difference.
format::VerifyResult CheckVerify(absl::string_view token, absl::string_view audience, int64_t now,
                                 const format::VerifyOptions& options = {});

}  // namespace sessiontoken::fuzz

#endif  // SESSIONTOKEN_TESTS_FUZZ_FIXTURE_H_
