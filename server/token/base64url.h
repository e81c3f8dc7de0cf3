// Strict URL-safe base64 without padding (RFC 4648 section 5): the encoding used by tokens.
// Decoding accepts only the canonical form: no padding, no whitespace, unused bits zero.
#ifndef SESSIONTOKEN_SERVER_TOKEN_BASE64URL_H_
#define SESSIONTOKEN_SERVER_TOKEN_BASE64URL_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace sessiontoken::token {

// Length of the encoding of n bytes.
constexpr size_t Base64UrlEncodedSize(size_t n) { return (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0); }

// Appends the encoding of `in` to *out.
void Base64UrlEncodeAppend(absl::string_view in, std::string* out);
std::string Base64UrlEncode(absl::string_view in);

// Decodes canonical unpadded base64url into *out (replacing its contents). Returns false on
// any non-alphabet character, an impossible length (n % 4 == 1) or non-zero unused bits.
bool Base64UrlDecodeStrict(absl::string_view in, std::string* out);

// Length of the decoding of `n` canonical characters (meaningless when n % 4 == 1).
constexpr size_t Base64UrlDecodedSize(size_t n) { return n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0); }
// The same into out[0, Base64UrlDecodedSize(in.size())), which the caller sizes.
bool Base64UrlDecodeStrict(absl::string_view in, char* out);

}  // namespace sessiontoken::token

#endif  // SESSIONTOKEN_SERVER_TOKEN_BASE64URL_H_
