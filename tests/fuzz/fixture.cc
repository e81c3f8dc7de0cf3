#include "tests/fuzz/fixture.h"

#include <zlib.h>

#include <algorithm>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "server/crypto/aead.h"
#include "server/crypto/secret_bytes.h"
#include "tests/fuzz/fuzz_check.h"

namespace sessiontoken::fuzz {
namespace {

constexpr uint32_t kFlaskDev = 0xF1000001, kFlaskAnother = 0xF1000002, kFlaskBytes = 0xF1000003,
                   kFlaskStr = 0xF1000004, kFlaskK = 0xF1000005;

std::vector<FixtureKey> MakeKeys() {
  using v1::ACTIVE;
  using v1::DESTROYED;
  using v1::DISABLED;
  using v1::HMAC_SHA1_FLASK;
  using v1::HMAC_SHA256;
  using v1::PRIMARY;
  using v1::STAGED;
  auto hex = [](absl::string_view h) { return absl::HexStringToBytes(h); };
  // Newest first. Native keys carry the key ids of tests/vectors/native_v1.json, Flask keys
  // the secrets of tests/vectors/flask_v1.json; ids 0xDEAD.... are destroyed tombstones.
  return {
      {3735928559u, HMAC_SHA256, PRIMARY, "KKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK"},
      {16909060u, HMAC_SHA256, ACTIVE,
       hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")},
      {kFlaskDev, HMAC_SHA1_FLASK, ACTIVE, "dev-secret"},
      {8u, HMAC_SHA256, STAGED,
       hex("010101010101010101010101010101010101010101010101010101010101010101010101010101010101010"
           "101010101")},
      {kFlaskAnother, HMAC_SHA1_FLASK, STAGED, "another secret key"},
      {1u, HMAC_SHA256, ACTIVE,
       hex("0000000000000000000000000000000000000000000000000000000000000000")},
      {4294967295u, HMAC_SHA256, ACTIVE,
       hex("6465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283")},
      {123456789u, HMAC_SHA256, ACTIVE,
       hex("a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5")},
      {kFlaskBytes, HMAC_SHA1_FLASK, ACTIVE,
       hex("fff8f1eae3dcd5cec7c0b9b2aba49d968f88817a736c655e575049423b342d261f18110a03c3a9")},
      {7u, HMAC_SHA256, DISABLED,
       hex("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")},
      {kFlaskStr, HMAC_SHA1_FLASK, DISABLED, hex("73c3a9637265742dd0bad0bbd18ed187")},
      {kFlaskK, HMAC_SHA1_FLASK, ACTIVE, "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"},
      {0xDEAD0001u, HMAC_SHA256, DESTROYED, ""},
      {0xDEAD0002u, HMAC_SHA1_FLASK, DESTROYED, ""},
  };
}

bool CanVerify(v1::KeyState s) { return s == v1::STAGED || s == v1::PRIMARY || s == v1::ACTIVE; }

struct Fixture {
  std::vector<FixtureKey> keys = MakeKeys();
  std::vector<std::string> audiences = {"",
                                        "web",
                                        "shop:session",
                                        std::string(256, 'a'),
                                        "x",
                                        "\xf0\x9f\x8d\xaa",
                                        "api",
                                        "cookie-session",
                                        "my-app.session"};
  std::shared_ptr<const keyring::Keyring> keyring;
  std::shared_ptr<const format::KeyringSigner> signer;
  std::map<uint32_t, std::unique_ptr<crypto::Hmac>> native_macs;
  std::map<std::pair<uint32_t, std::string>, std::unique_ptr<crypto::Hmac>> flask_signers;

  Fixture() {
    const absl::Time base = absl::FromUnixSeconds(1760000000);
    std::vector<std::shared_ptr<const keyring::Key>> ks;
    for (size_t i = 0; i < keys.size(); ++i) {
      const FixtureKey& k = keys[i];
      const absl::Time t = base - absl::Hours(static_cast<int64_t>(i));
      auto key = keyring::Key::New({k.id, k.algorithm, k.state, t, t},
                                   crypto::SecretBytes::CopyFrom(k.material));
      FUZZ_CHECK(key.ok());
      ks.push_back(*key);
      if (k.algorithm == v1::HMAC_SHA256 && !k.material.empty()) {
        auto mac = crypto::Hmac::New(crypto::HashFunction::kSha256, k.material);
        FUZZ_CHECK(mac.ok());
        native_macs[k.id] = *std::move(mac);
      }
    }
    auto kr = keyring::Keyring::New("fuzz", 1, base, std::move(ks));
    FUZZ_CHECK(kr.ok());
    keyring = *kr;
    auto s = format::KeyringSigner::New(keyring);
    FUZZ_CHECK(s.ok());
    signer = *s;
    // The models below rely on knowing the order Verify tries Flask keys in.
    FUZZ_CHECK(keyring->keys().size() == keys.size());
    for (size_t i = 0; i < keys.size(); ++i) FUZZ_CHECK(keyring->keys()[i]->id() == keys[i].id);
  }
};

Fixture& F() {
  static Fixture* f = new Fixture();
  return *f;
}

std::unique_ptr<crypto::Hmac> DeriveSigner(absl::string_view secret, absl::string_view salt) {
  auto outer = crypto::Hmac::New(crypto::HashFunction::kSha1, secret);
  FUZZ_CHECK(outer.ok());
  uint8_t derived[20];
  (*outer)->Compute({salt}, derived);
  auto signer = crypto::Hmac::New(crypto::HashFunction::kSha1,
                                  absl::string_view(reinterpret_cast<char*>(derived), 20));
  FUZZ_CHECK(signer.ok());
  return *std::move(signer);
}

uint64_t Be(absl::string_view b) {
  uint64_t v = 0;
  for (char c : b) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

bool SameResult(const format::VerifyResult& a, const format::VerifyResult& b) {
  return a.status == b.status && a.key_id == b.key_id && a.issued_at == b.issued_at &&
         a.expires_at == b.expires_at && a.payload == b.payload &&
         a.refresh_recommended == b.refresh_recommended && a.subject == b.subject &&
         a.token_id == b.token_id;
}

std::string Describe(const format::VerifyResult& r) {
  return absl::StrCat(format::VerifyStatusName(r.status), " key_id=", r.key_id,
                      " iat=", r.issued_at, " exp=", r.expires_at,
                      " payload=", absl::CHexEscape(r.payload.substr(0, 64)),
                      " refresh=", r.refresh_recommended);
}

// The documented verification order, as a model.
format::VerifyResult ExpectedVerify(absl::string_view token, absl::string_view audience,
                                    int64_t now, const format::VerifyOptions& options) {
  using format::VerifyStatus;
  const int64_t skew = absl::ToInt64Seconds(options.max_clock_skew);
  const int64_t max_age = absl::ToInt64Seconds(options.max_age);
  int64_t latest_iat;  // now + skew, saturating
  if (__builtin_add_overflow(now, skew, &latest_iat)) latest_iat = INT64_MAX;
  format::VerifyResult e;
  e.status = VerifyStatus::kMalformed;
  if (absl::StartsWith(token, "st1.") || absl::StartsWith(token, "st2.")) {
    std::optional<ModelNativeToken> t = ModelParseNative(token);
    if (!t) return e;
    e.key_id = t->key_id;
    const FixtureKey* k = FindFixtureKey(t->key_id);
    if (k == nullptr) {
      e.status = VerifyStatus::kUnknownKey;
      return e;
    }
    if (!CanVerify(k->state)) {
      e.status = VerifyStatus::kKeyDisabled;
      return e;
    }
    if (k->algorithm != v1::HMAC_SHA256) {
      e.status = VerifyStatus::kBadSignature;
      return e;
    }
    if (ModelNativeMac(*NativeMac(k->id), audience, t->signed_part, token.substr(0, 4)) != t->mac) {
      uint8_t digest[32];
      crypto::Sha256(audience, digest);
      e.status = absl::string_view(reinterpret_cast<char*>(digest), 4) == t->audience_tag
                     ? VerifyStatus::kBadSignature
                     : VerifyStatus::kWrongAudience;
      return e;
    }
    e.issued_at = t->issued_at;
    e.expires_at = t->expires_at;
    if (t->version == 2) {
      e.subject = t->subject;
      e.token_id = ModelBase64UrlEncode(t->token_id);
    }
    if (t->issued_at > latest_iat) {
      e.status = VerifyStatus::kNotYetValid;
    } else if (now >= t->expires_at) {
      e.status = VerifyStatus::kExpired;
    } else {
      std::optional<std::string> plain =
          t->sealed ? ModelOpenSealed(k->material, audience, *t) : t->payload;
      e.status = plain.has_value() ? VerifyStatus::kValid : VerifyStatus::kBadSignature;
      e.payload = plain.value_or("");
      e.refresh_recommended = plain.has_value() && k->state != v1::PRIMARY;
    }
    return e;
  }
  const size_t dots = std::count(token.begin(), token.end(), '.');
  if (!(dots == 2 || (dots == 3 && token[0] == '.'))) return e;
  // The MAC is checked before anything is inflated: a body that does not inflate matters
  // only once a key matched.
  std::optional<ModelFlaskToken> t = ModelParseFlask(token, /*require_payload=*/false);
  if (!t) return e;
  const FixtureKey* match = nullptr;
  bool any_flask_key = false;
  for (const FixtureKey& k : FixtureKeys()) {
    any_flask_key |= k.algorithm == v1::HMAC_SHA1_FLASK && !k.material.empty();
  }
  for (int pass = 0; pass < 2 && match == nullptr && any_flask_key; ++pass) {
    for (const FixtureKey& k : FixtureKeys()) {
      if (k.algorithm != v1::HMAC_SHA1_FLASK || k.material.empty()) continue;
      if (CanVerify(k.state) != (pass == 0)) continue;
      uint8_t sig[20];
      FlaskSigner(k, audience).Compute({t->signed_part}, sig);
      if (absl::string_view(reinterpret_cast<char*>(sig), 20) == t->signature) {
        match = &k;
        break;
      }
    }
  }
  if (match == nullptr) {
    e.status = any_flask_key ? VerifyStatus::kBadSignature : VerifyStatus::kUnknownKey;
    return e;
  }
  e.key_id = match->id;
  if (!CanVerify(match->state)) {
    e.status = VerifyStatus::kKeyDisabled;
    return e;
  }
  if (!t->payload_ok) {
    e.status = VerifyStatus::kMalformed;  // signed by our key, yet not a bounded zlib stream
    return e;
  }
  e.issued_at = t->timestamp;
  // A cookie older than max_age is expired (itsdangerous: age > max_age). Saturating: the
  // model has no opinion on what the service computes past int64.
  if (__builtin_add_overflow(t->timestamp, max_age, &e.expires_at)) e.expires_at = INT64_MAX;
  if (t->timestamp > latest_iat) {
    e.status = VerifyStatus::kNotYetValid;
  } else if (now > e.expires_at) {
    e.status = VerifyStatus::kExpired;
  } else {
    e.status = VerifyStatus::kValid;
    e.payload = t->payload;
    e.refresh_recommended = match->state != v1::PRIMARY;
  }
  return e;
}

}  // namespace

const std::vector<FixtureKey>& FixtureKeys() { return F().keys; }
const keyring::Keyring& FixtureKeyring() { return *F().keyring; }
const format::KeyringSigner& FixtureSigner() { return *F().signer; }
const std::vector<std::string>& FixtureAudiences() { return F().audiences; }

const FixtureKey* FindFixtureKey(uint32_t id) {
  for (const FixtureKey& k : F().keys) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

const crypto::Hmac* NativeMac(uint32_t id) {
  auto it = F().native_macs.find(id);
  return it == F().native_macs.end() ? nullptr : it->second.get();
}

const crypto::Hmac& FlaskSigner(const FixtureKey& key, absl::string_view salt) {
  auto& cache = F().flask_signers;
  const bool fixed =
      std::find(F().audiences.begin(), F().audiences.end(), salt) != F().audiences.end();
  if (!fixed) {
    // Arbitrary audiences are derived per call; keep one slot so memory stays bounded.
    static std::unique_ptr<crypto::Hmac> scratch;
    scratch = DeriveSigner(key.material, salt);
    return *scratch;
  }
  auto& slot = cache[{key.id, std::string(salt)}];
  if (slot == nullptr) slot = DeriveSigner(key.material, salt);
  return *slot;
}

std::string ModelNativeMac(const crypto::Hmac& mac, absl::string_view audience,
                           absl::string_view signed_part, absl::string_view prefix) {
  char len[4];
  for (int i = 0; i < 4; ++i) len[i] = static_cast<char>(audience.size() >> (24 - 8 * i));
  uint8_t tag[32];
  mac.Compute({prefix, absl::string_view(len, 4), audience, signed_part}, tag);
  return std::string(reinterpret_cast<char*>(tag), sizeof(tag));
}

bool ModelBase64UrlDecode(absl::string_view in, std::string* out) {
  out->clear();
  if (!absl::WebSafeBase64Unescape(in, out)) return false;
  return absl::WebSafeBase64Escape(*out) == in;
}

std::string ModelBase64UrlEncode(absl::string_view in) { return absl::WebSafeBase64Escape(in); }

// The v2 fields (flags, token id, subject) of body `b` into *t; false when malformed.
bool ModelParseV2(absl::string_view b, ModelNativeToken* t) {
  if (b.size() < 74) return false;
  const uint8_t flags = static_cast<uint8_t>(b[24]);
  if (flags > 1) return false;
  t->sealed = flags == 1;
  t->token_id = std::string(b.substr(25, 16));
  const size_t subject_len = static_cast<uint8_t>(b[41]);
  if (subject_len > 128 || b.size() < 74 + subject_len + (t->sealed ? 28 : 0)) return false;
  t->subject = std::string(b.substr(42, subject_len));
  t->header = std::string(b.substr(0, 42 + subject_len));
  t->payload = std::string(b.substr(42 + subject_len, b.size() - 32 - 42 - subject_len));
  return true;
}

std::optional<std::string> ModelOpenSealed(absl::string_view material, absl::string_view audience,
                                           const ModelNativeToken& t) {
  // HKDF-SHA256 (RFC 5869) with an empty salt: PRK = HMAC(zeros, ikm); OKM = HMAC(PRK, info|1).
  auto extract = crypto::Hmac::New(crypto::HashFunction::kSha256, std::string(32, '\0'));
  FUZZ_CHECK(extract.ok());
  uint8_t prk[32], okm[32];
  (*extract)->Compute({material}, prk);
  auto expand = crypto::Hmac::New(crypto::HashFunction::kSha256,
                                  absl::string_view(reinterpret_cast<char*>(prk), 32));
  FUZZ_CHECK(expand.ok());
  (*expand)->Compute({"sessiontoken st2 payload seal", absl::string_view("\x01", 1)}, okm);
  auto aead = crypto::Aes256Gcm::New(absl::string_view(reinterpret_cast<char*>(okm), 32));
  FUZZ_CHECK(aead.ok());
  char len[4];
  for (int i = 0; i < 4; ++i) len[i] = static_cast<char>(audience.size() >> (24 - 8 * i));
  const std::string aad = absl::StrCat("st2.", absl::string_view(len, 4), audience, t.header);
  auto plain = (*aead)->Open(absl::string_view(t.payload).substr(0, 12),
                             absl::string_view(t.payload).substr(12), aad);
  if (!plain.ok()) return std::nullopt;
  return std::string(plain->view());
}

std::optional<ModelNativeToken> ModelParseNative(absl::string_view token) {
  const bool v2 = absl::StartsWith(token, "st2.");
  if (token.size() > 4095 || !(v2 || absl::StartsWith(token, "st1."))) return std::nullopt;
  std::string body;
  if (!ModelBase64UrlDecode(token.substr(4), &body)) return std::nullopt;
  ModelNativeToken t;
  absl::string_view b(body);
  if (v2) {
    t.version = 2;
    if (!ModelParseV2(b, &t)) return std::nullopt;
  } else if (body.size() < 56 || body.size() - 56 > 3000) {
    return std::nullopt;
  } else {
    t.payload = std::string(b.substr(24, b.size() - 56));
  }
  t.key_id = static_cast<uint32_t>(Be(b.substr(0, 4)));
  t.issued_at = static_cast<int64_t>(Be(b.substr(4, 8)));
  t.expires_at = static_cast<int64_t>(Be(b.substr(12, 8)));
  if (t.issued_at < 0 || t.expires_at < t.issued_at) return std::nullopt;
  t.audience_tag = std::string(b.substr(20, 4));
  t.signed_part = std::string(b.substr(0, b.size() - 32));
  t.mac = std::string(b.substr(b.size() - 32));
  return t;
}

std::string ModelTimestampBytes(uint64_t v) {
  std::string out;
  for (; v != 0; v >>= 8) out.insert(out.begin(), static_cast<char>(v & 0xff));
  return out;
}

std::optional<ModelFlaskToken> ModelParseFlask(absl::string_view token, bool require_payload) {
  if (token.size() > 4095) return std::nullopt;
  // [ "." ] body "." ts "." sig, split at the last two dots.
  const size_t last = token.rfind('.');
  if (last == absl::string_view::npos) return std::nullopt;
  absl::string_view rest = token.substr(0, last), sig_text = token.substr(last + 1);
  const size_t second = rest.rfind('.');
  if (second == absl::string_view::npos) return std::nullopt;
  absl::string_view body = rest.substr(0, second), ts_text = rest.substr(second + 1);
  ModelFlaskToken t;
  t.compressed = absl::ConsumePrefix(&body, ".");
  if (!ModelBase64UrlDecode(sig_text, &t.signature) || t.signature.size() != 20) {
    return std::nullopt;
  }
  std::string ts;
  if (!ModelBase64UrlDecode(ts_text, &ts) || ts.size() > 8) return std::nullopt;
  if (!ts.empty() && (ts[0] == '\0' || (ts.size() == 8 && (ts[0] & 0x80)))) return std::nullopt;
  t.timestamp = static_cast<int64_t>(Be(ts));
  std::string raw;
  if (!ModelBase64UrlDecode(body, &raw)) return std::nullopt;
  if (t.compressed) {
    // One complete zlib stream, nothing after it, at most 64 KiB of output.
    constexpr size_t kMax = 64 * 1024;
    std::string out(kMax + 1, '\0');
    uLongf out_len = out.size();
    uLong in_len = raw.size();
    int rc = uncompress2(reinterpret_cast<Bytef*>(out.data()), &out_len,
                         reinterpret_cast<const Bytef*>(raw.data()), &in_len);
    if (rc != Z_OK || in_len != raw.size() || out_len > kMax) {
      if (require_payload) return std::nullopt;
      t.payload_ok = false;
    } else {
      out.resize(out_len);
      t.payload = std::move(out);
    }
  } else {
    t.payload = std::move(raw);
  }
  t.signed_part = std::string(token.substr(0, last));
  t.timestamp_text = std::string(ts_text);
  return t;
}

format::VerifyOptions ConsumeVerifyOptions(FuzzedDataProvider& p) {
  format::VerifyOptions o;
  o.max_clock_skew = absl::Seconds(p.ConsumeIntegralInRange<int64_t>(0, 86400));
  o.max_age = absl::Seconds(p.ConsumeBool() ? p.ConsumeIntegralInRange<int64_t>(1, INT64_MAX)
                                            : p.ConsumeIntegralInRange<int64_t>(1, 400 * 86400));
  return o;
}

format::VerifyResult CheckVerify(absl::string_view token, absl::string_view audience, int64_t now,
                                 const format::VerifyOptions& options) {
  format::VerifyResult got =
      FixtureSigner().Verify(token, audience, absl::FromUnixSeconds(now), options);
  format::VerifyResult want = ExpectedVerify(token, audience, now, options);
  if (!SameResult(got, want)) {
    std::fprintf(stderr,
                 "Keyring::Verify(audience=\"%s\", now=%lld, max_clock_skew=%s, max_age=%s)\n"
                 "  got:  %s\n  want: %s\n",
                 absl::CHexEscape(audience.substr(0, 64)).c_str(), static_cast<long long>(now),
                 absl::FormatDuration(options.max_clock_skew).c_str(),
                 absl::FormatDuration(options.max_age).c_str(), Describe(got).c_str(),
                 Describe(want).c_str());
    FUZZ_CHECK(SameResult(got, want));
  }
  return got;
}

}  // namespace sessiontoken::fuzz
