// Fuzz target "sealer": store::Sealer::Open with a fixed KEK.
//
// Each input is used twice:
//  1. As a sealed blob read from the store (keyring name "default"). Without the KEK a
//     mutated blob stops at the GCM tag, so this mostly checks the framing; the seed corpus
//     holds genuine blobs sealed with the fixed KEK.
//  2. As the plaintext of a genuine blob: the harness seals the input itself with the fixed
//     KEK (layout "STK1" | fingerprint | nonce | AES-256-GCM(plaintext, aad), aad =
//     "STK1" | fingerprint | "keyring:" | name, as server/store/sealer.cc writes it) under
//     the name the plaintext claims, so the protobuf parsing and keyring::FromStored behind
//     the tag are reached.
// Properties:
//  * Open fails only with DATA_LOSS, or FAILED_PRECONDITION exactly when the blob names
//    another KEK; a blob sealed here opens exactly when its plaintext is a StoredKeyring of
//    that name that keyring::FromStored accepts.
//  * An opened keyring has the requested name, unique non-zero key ids, one PRIMARY key and
//    a MAC for every non-destroyed key; sealing it again and opening that gives the same
//    stored form; and a token it signs with its primary key verifies as VALID.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/crypto/aead.h"
#include "server/crypto/hmac.h"
#include "server/format/keyring_signer.h"
#include "server/keyring/keyring.h"
#include "server/keyring/stored_form.h"
#include "server/store/sealer.h"
#include "server/token/flask.h"
#include "sessiontoken/v1/keyring.pb.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace sessiontoken;

constexpr char kKek[] = "sessiontoken-fuzz-kek-0123456789";  // 32 bytes
constexpr char kNonce[] = "fuzz-nonce-1";                    // 12 bytes

struct Fixture {
  std::unique_ptr<store::Sealer> sealer;
  std::unique_ptr<crypto::Aes256Gcm> aead;
  std::string fingerprint;  // raw, 8 bytes

  Fixture() {
    const absl::string_view kek(kKek, 32);
    auto s = store::Sealer::New(crypto::SecretBytes::CopyFrom(kek));
    FUZZ_CHECK(s.ok());
    sealer = *std::move(s);
    auto a = crypto::Aes256Gcm::New(kek);
    FUZZ_CHECK(a.ok());
    aead = *std::move(a);
    auto fp = crypto::Hmac::New(crypto::HashFunction::kSha256, kek);
    FUZZ_CHECK(fp.ok());
    uint8_t tag[32];
    (*fp)->Compute({"sessiontoken kek fingerprint v1"}, tag);
    fingerprint = std::string(reinterpret_cast<char*>(tag), 8);
    // The harness's idea of the layout must match the real one.
    FUZZ_CHECK(absl::BytesToHexString(fingerprint) == sealer->fingerprint());
  }
};

const Fixture& F() {
  static const Fixture* f = new Fixture();
  return *f;
}

std::string SealHere(absl::string_view name, absl::string_view plaintext) {
  const std::string aad = absl::StrCat("STK1", F().fingerprint, "keyring:", name);
  auto ct = F().aead->Seal(absl::string_view(kNonce, 12), plaintext, aad);
  FUZZ_CHECK(ct.ok());
  return absl::StrCat("STK1", F().fingerprint, absl::string_view(kNonce, 12), *ct);
}

// Opens `blob` and checks the result; returns whether it opened.
bool CheckOpen(const std::string& name, absl::string_view blob) {
  absl::StatusOr<std::shared_ptr<const keyring::Keyring>> kr = F().sealer->Open(name, blob);
  if (!kr.ok()) {
    const absl::string_view magic = blob.substr(0, 4);
    const bool other_kek =
        blob.size() >= 12 &&
        (magic == "STK1" || magic == "STK2" || magic == "STM1" || magic == "STR1") &&
        blob.substr(4, 8) != F().fingerprint;
    FUZZ_CHECK(other_kek ? absl::IsFailedPrecondition(kr.status()) : absl::IsDataLoss(kr.status()));
    return false;
  }
  const keyring::Keyring& k = **kr;
  FUZZ_CHECK(k.name() == name);
  FUZZ_CHECK(keyring::ValidateKeyringName(k.name()).ok());
  std::set<uint32_t> ids;
  int primaries = 0;
  for (const auto& key : k.keys()) {
    FUZZ_CHECK(key->id() != 0 && ids.insert(key->id()).second);
    FUZZ_CHECK(k.Find(key->id()) == key.get());
    if (key->state() == v1::PRIMARY) ++primaries;
    FUZZ_CHECK(key->material().empty() == (key->state() == v1::DESTROYED));
  }
  FUZZ_CHECK(primaries == 1 && k.primary().state() == v1::PRIMARY);

  // Seal -> Open is the identity on the stored form.
  v1::StoredKeyring stored, reopened_stored;
  keyring::ToStored(k, &stored);
  absl::StatusOr<std::string> resealed = F().sealer->Seal(k);
  FUZZ_CHECK(resealed.ok());
  absl::StatusOr<std::shared_ptr<const keyring::Keyring>> reopened =
      F().sealer->Open(name, *resealed);
  FUZZ_CHECK(reopened.ok());
  keyring::ToStored(**reopened, &reopened_stored);
  FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(stored, reopened_stored));

  // The opened keyring is usable: what it signs, it verifies.
  const bool flask = k.primary().metadata().algorithm == v1::HMAC_SHA1_FLASK;
  const std::string audience = flask ? std::string(token::kFlaskDefaultSalt) : "web";
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  absl::StatusOr<std::shared_ptr<const format::KeyringSigner>> signer =
      format::KeyringSigner::New(*kr);
  FUZZ_CHECK(signer.ok());
  absl::StatusOr<format::SignResult> signed_token =
      (*signer)->Sign("fuzz-payload", audience, now, absl::Hours(1));
  if (flask && k.policy().seal_payloads()) {  // Flask keys cannot seal: refused, never clear
    FUZZ_CHECK(signed_token.status().code() == absl::StatusCode::kFailedPrecondition);
    return true;
  }
  FUZZ_CHECK(signed_token.ok());
  format::VerifyResult v = (*signer)->Verify(signed_token->token, audience, now);
  FUZZ_CHECK(v.status == format::VerifyStatus::kValid && v.payload == "fuzz-payload");
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  F();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);
  // 1. The input as a blob.
  CheckOpen("default", in);

  // 2. The input as the plaintext of a genuine blob, under the name it claims.
  v1::StoredKeyring probe;
  const bool parses = probe.ParseFromArray(data, static_cast<int>(size));
  const std::string name = parses && !probe.name().empty() ? probe.name() : "default";
  bool expect_open = false;
  if (parses && probe.name() == name) {
    v1::StoredKeyring copy = probe;
    expect_open = keyring::FromStored(&copy).ok();
  }
  FUZZ_CHECK(CheckOpen(name, SealHere(name, in)) == expect_open);
  return 0;
}
