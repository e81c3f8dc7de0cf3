// The native compact token format (docs/token-format.md): pure encode/parse/MAC functions,
// no I/O and no clock. Layout: "st1." + base64url(key_id | iat | exp | aud_tag | payload | mac).
#ifndef SESSIONTOKEN_SERVER_TOKEN_NATIVE_H_
#define SESSIONTOKEN_SERVER_TOKEN_NATIVE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "server/crypto/hmac.h"

namespace sessiontoken::token {

inline constexpr absl::string_view kNativePrefix = "st1.";
inline constexpr size_t kKeyIdSize = 4;
inline constexpr size_t kTimeSize = 8;
inline constexpr size_t kAudienceTagSize = 4;
inline constexpr size_t kNativeMacSize = 32;
inline constexpr size_t kNativeHeaderSize = kKeyIdSize + 2 * kTimeSize + kAudienceTagSize;
inline constexpr size_t kNativeOverhead = kNativeHeaderSize + kNativeMacSize;
// Hard limits of the format; the server may configure lower ones.
inline constexpr size_t kMaxTokenSize = 4095;    // fits a 4096-byte cookie budget
inline constexpr size_t kMaxPayloadSize = 3000;  // keeps every token under kMaxTokenSize
inline constexpr size_t kMaxAudienceSize = 256;

// The signed claims of a native token.
struct NativeClaims {
  uint32_t key_id = 0;
  int64_t issued_at = 0;   // Unix seconds
  int64_t expires_at = 0;  // Unix seconds, exclusive
};

// A token that passed strict syntactic parsing; its MAC is not yet checked.
struct ParsedNativeToken {
  NativeClaims claims;
  // The decoded bytes; inline (no heap allocation) for payloads up to ~200 bytes.
  absl::InlinedVector<char, 256> body;

  absl::string_view audience_tag() const {
    return absl::string_view(body.data(), body.size())
        .substr(kKeyIdSize + 2 * kTimeSize, kAudienceTagSize);
  }
  absl::string_view payload() const {
    return absl::string_view(body.data(), body.size())
        .substr(kNativeHeaderSize, body.size() - kNativeOverhead);
  }
  // The body without the MAC.
  absl::string_view signed_part() const {
    return absl::string_view(body.data(), body.size()).substr(0, body.size() - kNativeMacSize);
  }
  absl::string_view mac() const {
    return absl::string_view(body.data(), body.size()).substr(body.size() - kNativeMacSize);
  }
};

// The 4-byte audience tag: SHA-256(audience)[0..4). Lets Verify tell WRONG_AUDIENCE apart
// from BAD_SIGNATURE; the audience itself is authenticated by the MAC.
std::string AudienceTag(absl::string_view audience);

// Encodes and MACs a token. Preconditions (checked by callers): payload and audience
// within the limits above, issued_at <= expires_at, mac.tag_size() == 32.
std::string SignNative(const crypto::Hmac& mac, const NativeClaims& claims,
                       absl::string_view audience, absl::string_view payload);

// Strict parse: the prefix, canonical base64url, exact lengths, limits, iat <= exp.
// Returns nullopt for anything that is not a well-formed native token.
std::optional<ParsedNativeToken> ParseNative(absl::string_view token);

// Checks the MAC of a parsed token for `audience` (constant-time).
bool CheckNativeMac(const crypto::Hmac& mac, const ParsedNativeToken& token,
                    absl::string_view audience);

}  // namespace sessiontoken::token

#endif  // SESSIONTOKEN_SERVER_TOKEN_NATIVE_H_
