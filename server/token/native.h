// The native compact token format (docs/token-format.md): pure encode/parse/MAC functions,
// no I/O, no clock and no randomness of their own (callers pass the token id and nonce).
//   v1: "st1." + base64url(key_id | iat | exp | aud_tag | payload | mac)
//   v2: "st2." + base64url(key_id | iat | exp | aud_tag | flags | token_id | subject_len |
//                          subject | payload-or-sealed-payload | mac)
// Sign issues v2; both versions parse and verify.
#ifndef SESSIONTOKEN_SERVER_TOKEN_NATIVE_H_
#define SESSIONTOKEN_SERVER_TOKEN_NATIVE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/crypto/aead.h"
#include "server/crypto/hmac.h"
#include "server/token/base64url.h"

namespace sessiontoken::token {

inline constexpr absl::string_view kNativePrefix = "st1.";
inline constexpr absl::string_view kNativeV2Prefix = "st2.";
inline constexpr size_t kKeyIdSize = 4;
inline constexpr size_t kTimeSize = 8;
inline constexpr size_t kAudienceTagSize = 4;
inline constexpr size_t kNativeMacSize = 32;
inline constexpr size_t kNativeHeaderSize = kKeyIdSize + 2 * kTimeSize + kAudienceTagSize;
inline constexpr size_t kNativeOverhead = kNativeHeaderSize + kNativeMacSize;
// v2: a flags byte, the random token id and a length-prefixed subject follow the v1 header.
inline constexpr size_t kTokenIdSize = 16;  // 128 random bits
inline constexpr size_t kMaxSubjectSize = 128;
inline constexpr size_t kV2FixedHeaderSize = kNativeHeaderSize + 1 + kTokenIdSize + 1;
inline constexpr size_t kV2Overhead = kV2FixedHeaderSize + kNativeMacSize;  // empty subject
inline constexpr uint8_t kFlagSealed = 0x01;  // the payload is AES-256-GCM sealed
// A sealed payload is nonce | ciphertext | GCM tag.
inline constexpr size_t kSealOverhead = crypto::Aes256Gcm::kNonceSize + crypto::Aes256Gcm::kTagSize;
// Hard limits of the format; the server may configure lower ones.
inline constexpr size_t kMaxTokenSize = 4095;    // fits a 4096-byte cookie budget
inline constexpr size_t kMaxPayloadSize = 3000;  // keeps every v1 token under kMaxTokenSize
inline constexpr size_t kMaxAudienceSize = 256;
// The largest body a token of kMaxTokenSize characters holds (both versions' prefixes are
// 4 characters). A v2 token's payload may be at most this minus its overhead.
inline constexpr size_t kMaxBodySize = Base64UrlDecodedSize(kMaxTokenSize - kNativePrefix.size());
// The HKDF-SHA256 info label of a key's payload-sealing key (salt empty, 32 bytes).
inline constexpr absl::string_view kSealKeyLabel = "sessiontoken st2 payload seal";

// The signed claims of a native token.
struct NativeClaims {
  uint32_t key_id = 0;
  int64_t issued_at = 0;   // Unix seconds
  int64_t expires_at = 0;  // Unix seconds, exclusive
};

// What a v2 token adds to the claims: the random token id (kTokenIdSize raw bytes) and the
// subject (at most kMaxSubjectSize bytes, may be empty).
struct NativeSession {
  absl::string_view token_id;
  absl::string_view subject;
};

// A token that passed strict syntactic parsing; its MAC is not yet checked.
struct ParsedNativeToken {
  int version = 1;
  NativeClaims claims;
  uint8_t flags = 0;
  size_t header_size = kNativeHeaderSize;  // where the payload (or sealed payload) starts
  // The decoded bytes; inline (no heap allocation) for payloads up to ~200 bytes.
  absl::InlinedVector<char, 256> body;

  absl::string_view view() const { return absl::string_view(body.data(), body.size()); }
  bool sealed() const { return (flags & kFlagSealed) != 0; }
  // v2: the token id (kTokenIdSize raw bytes) and the subject; empty for v1. Views into body.
  absl::string_view token_id() const {
    return version == 1 ? absl::string_view() : view().substr(kNativeHeaderSize + 1, kTokenIdSize);
  }
  absl::string_view subject() const {
    return version == 1 ? absl::string_view()
                        : view().substr(kV2FixedHeaderSize, header_size - kV2FixedHeaderSize);
  }
  absl::string_view prefix() const { return version == 1 ? kNativePrefix : kNativeV2Prefix; }
  absl::string_view audience_tag() const {
    return view().substr(kKeyIdSize + 2 * kTimeSize, kAudienceTagSize);
  }
  // The payload as carried: in clear, or (sealed()) nonce | ciphertext | tag.
  absl::string_view payload() const {
    return view().substr(header_size, body.size() - header_size - kNativeMacSize);
  }
  // Everything before the payload (the associated data of a sealed payload, with the
  // audience).
  absl::string_view header() const { return view().substr(0, header_size); }
  // The body without the MAC.
  absl::string_view signed_part() const { return view().substr(0, body.size() - kNativeMacSize); }
  absl::string_view mac() const { return view().substr(body.size() - kNativeMacSize); }
};

// The 4-byte audience tag: SHA-256(audience)[0..4). Lets Verify tell WRONG_AUDIENCE apart
// from BAD_SIGNATURE; the audience itself is authenticated by the MAC.
std::string AudienceTag(absl::string_view audience);

// Encodes and MACs a v1 token (kept for the v1 vectors; Sign issues v2). Preconditions
// (checked by callers): payload and audience within the limits above, issued_at <=
// expires_at, mac.tag_size() == 32.
std::string SignNative(const crypto::Hmac& mac, const NativeClaims& claims,
                       absl::string_view audience, absl::string_view payload);

// How a v2 payload is sealed: the key's sealing AEAD (DeriveSealKey) and a fresh random
// 12-byte nonce, never reused with that key.
struct PayloadSeal {
  const crypto::Aes256Gcm* aead = nullptr;
  absl::string_view nonce;
};

// The size in characters of a v2 token (including the prefix).
size_t NativeV2TokenSize(size_t subject_size, size_t payload_size, bool sealed);

// Encodes a v2 token: session.token_id exactly kTokenIdSize bytes, the subject at most
// kMaxSubjectSize bytes (else InvalidArgument); `seal` non-null seals the payload.
// Preconditions as SignNative, plus NativeV2TokenSize(...) <= kMaxTokenSize.
absl::StatusOr<std::string> SignNativeV2(const crypto::Hmac& mac, const NativeClaims& claims,
                                         const NativeSession& session, absl::string_view audience,
                                         absl::string_view payload, const PayloadSeal* seal);

// Strict parse of either version: the prefix, canonical base64url, exact lengths, limits,
// known flags, iat <= exp. Returns nullopt for anything that is not a well-formed native
// token.
std::optional<ParsedNativeToken> ParseNative(absl::string_view token);

// True when `token` starts with a native prefix (either version).
bool HasNativePrefix(absl::string_view token);

// Checks the MAC of a parsed token for `audience` (constant-time).
bool CheckNativeMac(const crypto::Hmac& mac, const ParsedNativeToken& token,
                    absl::string_view audience);

// The payload-sealing AEAD of a native key: AES-256-GCM under
// HKDF-SHA256(material, salt = "", info = kSealKeyLabel), never the MAC key itself.
absl::StatusOr<std::unique_ptr<crypto::Aes256Gcm>> DeriveSealKey(absl::string_view material);

// Opens the sealed payload of a v2 token (sealed()) for `audience`. Fails (without detail)
// when the nonce, ciphertext, tag, header or audience do not authenticate.
absl::StatusOr<crypto::SecretBytes> OpenSealedPayload(const crypto::Aes256Gcm& aead,
                                                      const ParsedNativeToken& token,
                                                      absl::string_view audience);

}  // namespace sessiontoken::token

#endif  // SESSIONTOKEN_SERVER_TOKEN_NATIVE_H_
