#include "server/token/native.h"

#include <cstring>

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
bool MacOver(const crypto::Hmac& mac, absl::string_view audience, absl::string_view signed_part,
             uint8_t* out, absl::string_view expected_tag, bool verify) {
  char len[4];
  PutBe32(static_cast<uint32_t>(audience.size()), len);
  std::initializer_list<absl::string_view> parts = {kNativePrefix, absl::string_view(len, 4),
                                                    audience, signed_part};
  if (verify) return mac.Verify(parts, expected_tag);
  mac.Compute(parts, out);
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
  char* p = body.data();
  PutBe32(claims.key_id, p);
  PutBe64(static_cast<uint64_t>(claims.issued_at), p + kKeyIdSize);
  PutBe64(static_cast<uint64_t>(claims.expires_at), p + kKeyIdSize + kTimeSize);
  uint8_t digest[32];
  crypto::Sha256(audience, digest);
  std::memcpy(p + kKeyIdSize + 2 * kTimeSize, digest, kAudienceTagSize);
  if (!payload.empty()) std::memcpy(p + kNativeHeaderSize, payload.data(), payload.size());
  size_t signed_len = kNativeHeaderSize + payload.size();
  MacOver(mac, audience, absl::string_view(body.data(), signed_len),
          reinterpret_cast<uint8_t*>(p + signed_len), {}, /*verify=*/false);
  std::string token;
  token.reserve(kNativePrefix.size() + Base64UrlEncodedSize(body.size()));
  token.append(kNativePrefix.data(), kNativePrefix.size());
  Base64UrlEncodeAppend(body, &token);
  return token;
}

std::optional<ParsedNativeToken> ParseNative(absl::string_view token) {
  if (token.size() > kMaxTokenSize) return std::nullopt;
  if (token.substr(0, kNativePrefix.size()) != kNativePrefix) return std::nullopt;
  absl::string_view encoded = token.substr(kNativePrefix.size());
  if (encoded.size() < Base64UrlEncodedSize(kNativeOverhead)) return std::nullopt;
  ParsedNativeToken t;
  if (encoded.size() % 4 == 1) return std::nullopt;
  t.body.resize(Base64UrlDecodedSize(encoded.size()));
  if (!Base64UrlDecodeStrict(encoded, t.body.data())) return std::nullopt;
  if (t.body.size() < kNativeOverhead || t.body.size() > kNativeOverhead + kMaxPayloadSize) {
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
  return MacOver(mac, audience, token.signed_part(), nullptr, token.mac(), /*verify=*/true);
}

}  // namespace sessiontoken::token
