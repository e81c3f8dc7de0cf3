#include "server/token/native.h"

#include <cstring>

#include "absl/status/status.h"
#include "server/crypto/hkdf.h"
#include "server/token/base64url.h"

namespace sessiontoken::token {
namespace {

void PutBe32(uint32_t v, char* out) {
  for (int i = 3; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
}
void PutBe64(uint64_t v, char* out) {
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
}
uint32_t GetBe32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
uint64_t GetBe64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// MAC input = prefix || be32(len(audience)) || audience || signed_part.
bool MacOver(const crypto::Hmac& mac, absl::string_view prefix, absl::string_view audience,
             absl::string_view signed_part, uint8_t* out, absl::string_view expected_tag,
             bool verify) {
  char len[4];
  PutBe32(static_cast<uint32_t>(audience.size()), len);
  std::initializer_list<absl::string_view> parts = {prefix, absl::string_view(len, 4), audience,
                                                    signed_part};
  if (verify) return mac.Verify(parts, expected_tag);
  mac.Compute(parts, out);
  return true;
}

// The associated data of a sealed payload: prefix || be32(len(audience)) || audience ||
// header (key id, times, audience tag, flags, token id, subject).
std::string SealAad(absl::string_view prefix, absl::string_view audience,
                    absl::string_view header) {
  std::string aad;
  aad.reserve(prefix.size() + 4 + audience.size() + header.size());
  char len[4];
  PutBe32(static_cast<uint32_t>(audience.size()), len);
  for (absl::string_view part : {prefix, absl::string_view(len, 4), audience, header}) {
    aad.append(part.data(), part.size());
  }
  return aad;
}

// Writes key id, times and the audience tag (the v1 header) at p.
void PutHeader(const NativeClaims& claims, absl::string_view audience, char* p) {
  PutBe32(claims.key_id, p);
  PutBe64(static_cast<uint64_t>(claims.issued_at), p + kKeyIdSize);
  PutBe64(static_cast<uint64_t>(claims.expires_at), p + kKeyIdSize + kTimeSize);
  uint8_t digest[32];
  crypto::Sha256(audience, digest);
  std::memcpy(p + kKeyIdSize + 2 * kTimeSize, digest, kAudienceTagSize);
}

// MACs body[0, len - 32) into its last 32 bytes and encodes the token.
std::string Finish(const crypto::Hmac& mac, absl::string_view prefix, absl::string_view audience,
                   std::string& body) {
  const size_t signed_len = body.size() - kNativeMacSize;
  MacOver(mac, prefix, audience, absl::string_view(body.data(), signed_len),
          reinterpret_cast<uint8_t*>(body.data() + signed_len), {}, /*verify=*/false);
  std::string token;
  token.reserve(prefix.size() + Base64UrlEncodedSize(body.size()));
  token.append(prefix.data(), prefix.size());
  Base64UrlEncodeAppend(body, &token);
  return token;
}

// Decodes the base64url part of a token of at most kMaxTokenSize characters.
bool DecodeBody(absl::string_view encoded, ParsedNativeToken* t) {
  if (encoded.size() % 4 == 1) return false;
  t->body.resize(Base64UrlDecodedSize(encoded.size()));
  return Base64UrlDecodeStrict(encoded, t->body.data());
}

// The v2 fields after the v1 header: flags, token id, subject. False when malformed.
bool ParseV2Fields(ParsedNativeToken* t) {
  if (t->body.size() < kV2Overhead) return false;
  const char* p = t->body.data() + kNativeHeaderSize;
  t->flags = static_cast<uint8_t>(p[0]);
  if ((t->flags & ~kFlagSealed) != 0) return false;
  const size_t subject_size = static_cast<uint8_t>(p[1 + kTokenIdSize]);
  if (subject_size > kMaxSubjectSize) return false;
  t->header_size = kV2FixedHeaderSize + subject_size;
  const size_t min_size = kV2Overhead + subject_size + (t->sealed() ? kSealOverhead : 0);
  if (t->body.size() < min_size) return false;
  return true;
}

}  // namespace

std::string AudienceTag(absl::string_view audience) {
  uint8_t digest[32];
  crypto::Sha256(audience, digest);
  return std::string(reinterpret_cast<const char*>(digest), kAudienceTagSize);
}

std::string SignNative(const crypto::Hmac& mac, const NativeClaims& claims,
                       absl::string_view audience, absl::string_view payload) {
  std::string body(kNativeHeaderSize + payload.size() + kNativeMacSize, '\0');
  PutHeader(claims, audience, body.data());
  if (!payload.empty()) std::memcpy(&body[kNativeHeaderSize], payload.data(), payload.size());
  return Finish(mac, kNativePrefix, audience, body);
}

size_t NativeV2TokenSize(size_t subject_size, size_t payload_size, bool sealed) {
  const size_t body = kV2Overhead + subject_size + payload_size + (sealed ? kSealOverhead : 0);
  return kNativeV2Prefix.size() + Base64UrlEncodedSize(body);
}

absl::StatusOr<std::string> SignNativeV2(const crypto::Hmac& mac, const NativeClaims& claims,
                                         const NativeSession& session, absl::string_view audience,
                                         absl::string_view payload, const PayloadSeal* seal) {
  if (session.token_id.size() != kTokenIdSize || session.subject.size() > kMaxSubjectSize) {
    return absl::InvalidArgumentError("token id or subject of the wrong size");
  }
  const size_t header_size = kV2FixedHeaderSize + session.subject.size();
  const size_t section = payload.size() + (seal != nullptr ? kSealOverhead : 0);
  std::string body(header_size + section + kNativeMacSize, '\0');
  char* p = body.data();
  PutHeader(claims, audience, p);
  p[kNativeHeaderSize] = static_cast<char>(seal != nullptr ? kFlagSealed : 0);
  std::memcpy(p + kNativeHeaderSize + 1, session.token_id.data(), kTokenIdSize);
  p[kNativeHeaderSize + 1 + kTokenIdSize] = static_cast<char>(session.subject.size());
  if (!session.subject.empty()) {
    std::memcpy(p + kV2FixedHeaderSize, session.subject.data(), session.subject.size());
  }
  if (seal == nullptr) {
    if (!payload.empty()) std::memcpy(p + header_size, payload.data(), payload.size());
    return Finish(mac, kNativeV2Prefix, audience, body);
  }
  if (seal->aead == nullptr || seal->nonce.size() != crypto::Aes256Gcm::kNonceSize) {
    return absl::InvalidArgumentError("sealing needs an AEAD and a 12-byte nonce");
  }
  const std::string aad =
      SealAad(kNativeV2Prefix, audience, absl::string_view(body.data(), header_size));
  absl::StatusOr<std::string> ct = seal->aead->Seal(seal->nonce, payload, aad);
  if (!ct.ok()) return ct.status();
  std::memcpy(p + header_size, seal->nonce.data(), seal->nonce.size());
  std::memcpy(p + header_size + seal->nonce.size(), ct->data(), ct->size());
  return Finish(mac, kNativeV2Prefix, audience, body);
}

bool HasNativePrefix(absl::string_view token) {
  absl::string_view prefix = token.substr(0, kNativePrefix.size());
  return prefix == kNativePrefix || prefix == kNativeV2Prefix;
}

std::optional<ParsedNativeToken> ParseNative(absl::string_view token) {
  if (token.size() > kMaxTokenSize) return std::nullopt;
  ParsedNativeToken t;
  absl::string_view prefix = token.substr(0, kNativePrefix.size());
  if (prefix == kNativeV2Prefix) {
    t.version = 2;
  } else if (prefix != kNativePrefix) {
    return std::nullopt;
  }
  absl::string_view encoded = token.substr(kNativePrefix.size());
  if (encoded.size() < Base64UrlEncodedSize(kNativeOverhead)) return std::nullopt;
  if (!DecodeBody(encoded, &t)) return std::nullopt;
  if (t.version == 1) {
    if (t.body.size() < kNativeOverhead || t.body.size() > kNativeOverhead + kMaxPayloadSize) {
      return std::nullopt;
    }
  } else if (!ParseV2Fields(&t)) {
    return std::nullopt;
  }
  const char* p = t.body.data();
  t.claims.key_id = GetBe32(p);
  t.claims.issued_at = static_cast<int64_t>(GetBe64(p + kKeyIdSize));
  t.claims.expires_at = static_cast<int64_t>(GetBe64(p + kKeyIdSize + kTimeSize));
  if (t.claims.issued_at < 0 || t.claims.expires_at < t.claims.issued_at) return std::nullopt;
  return t;
}

bool CheckNativeMac(const crypto::Hmac& mac, const ParsedNativeToken& token,
                    absl::string_view audience) {
  return MacOver(mac, token.prefix(), audience, token.signed_part(), nullptr, token.mac(),
                 /*verify=*/true);
}

absl::StatusOr<std::unique_ptr<crypto::Aes256Gcm>> DeriveSealKey(absl::string_view material) {
  absl::StatusOr<crypto::SecretBytes> key =
      crypto::HkdfSha256(material, /*salt=*/"", kSealKeyLabel, crypto::Aes256Gcm::kKeySize);
  if (!key.ok()) return key.status();
  return crypto::Aes256Gcm::New(key->view());
}

absl::StatusOr<crypto::SecretBytes> OpenSealedPayload(const crypto::Aes256Gcm& aead,
                                                      const ParsedNativeToken& token,
                                                      absl::string_view audience) {
  if (!token.sealed()) return absl::InvalidArgumentError("the payload is not sealed");
  absl::string_view sealed = token.payload();
  const std::string aad = SealAad(token.prefix(), audience, token.header());
  return aead.Open(sealed.substr(0, crypto::Aes256Gcm::kNonceSize),
                   sealed.substr(crypto::Aes256Gcm::kNonceSize), aad);
}

}  // namespace sessiontoken::token
