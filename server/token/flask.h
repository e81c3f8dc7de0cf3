// The cookie format of Flask's default session interface (flask.sessions.
// SecureCookieSessionInterface): an itsdangerous URLSafeTimedSerializer with HMAC-SHA1 and
// key derivation "hmac". Pure encode/parse/MAC functions, no I/O and no clock; the payload
// is the serializer's JSON text as opaque bytes (this codec never interprets JSON).
//
//   token   = [ "." ] base64url(body) "." base64url(ts) "." base64url(sig)
//   body    = zlib(payload) when that is at least 2 bytes shorter than payload (the "."
//             marks it), else payload
//   ts      = Unix seconds, big-endian, leading zero bytes stripped (0 encodes as "")
//   sig     = HMAC-SHA1(HMAC-SHA1(secret, salt), everything before the last ".")
//
// base64url is unpadded throughout. Reproduces itsdangerous 2.1 (flask 2.2) byte for byte,
// zlib output included when both link the same zlib (Debian's; level Z_DEFAULT_COMPRESSION):
// tests/vectors/flask_v1.py generates the vectors from the real Flask.
#ifndef SESSIONTOKEN_SERVER_TOKEN_FLASK_H_
#define SESSIONTOKEN_SERVER_TOKEN_FLASK_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/crypto/hmac.h"

namespace sessiontoken::token {

// SecureCookieSessionInterface.salt.
inline constexpr absl::string_view kFlaskDefaultSalt = "cookie-session";
// HMAC-SHA1 tag size.
inline constexpr size_t kFlaskSignatureSize = 20;
// Limits enforced by ParseFlask. A cookie is at most 4096 bytes in browsers; the payload
// limit bounds decompression (a zip bomb is rejected after producing at most this much).
inline constexpr size_t kFlaskMaxTokenSize = 4095;
inline constexpr size_t kFlaskMaxPayloadSize = 64 * 1024;

// The itsdangerous "hmac" key derivation: returns an HMAC-SHA1 keyed with
// HMAC-SHA1(secret, salt). `secret` is Flask's app.secret_key as bytes (a str secret is its
// UTF-8 encoding). Fails on an empty secret (Flask disables sessions without a secret key).
// The salt may be empty.
absl::StatusOr<std::unique_ptr<crypto::Hmac>> DeriveFlaskSigner(absl::string_view secret,
                                                                absl::string_view salt);

// Encodes and signs `payload` (the session's JSON text) with `timestamp` (Unix seconds).
// Preconditions (checked by callers): signer comes from DeriveFlaskSigner, timestamp >= 0,
// payload.size() <= kFlaskMaxPayloadSize. The result may exceed kFlaskMaxTokenSize (its
// size depends on compression): callers that issue cookies must check it.
std::string SignFlask(const crypto::Hmac& signer, absl::string_view payload, int64_t timestamp);

// A token that passed strict syntactic parsing; its signature is not yet checked.
struct ParsedFlaskToken {
  std::string body;         // the decoded body: zlib data when compressed
  std::string payload;      // the session JSON, once expanded (ExpandFlaskPayload)
  int64_t timestamp = 0;    // Unix seconds, >= 0
  bool compressed = false;  // the token started with "."
  std::string signed_part;  // the token text before the last "." (what the HMAC covers)
  std::string signature;    // kFlaskSignatureSize raw bytes
};

// Strict parse. Accepts exactly what itsdangerous emits and nothing else:
//  * at most kFlaskMaxTokenSize characters, split (like itsdangerous) at its last two dots
//    into body, timestamp and signature; the body is base64url(payload) or, compressed,
//    "." base64url(zlib(payload)); every base64url is canonical and unpadded (see
//    base64url.h: no "=", "+", "/", whitespace, non-ASCII, other dots, non-zero unused bits);
//  * the timestamp section decodes to at most 8 bytes without a leading zero byte and a
//    value below 2^63 ("" is 0);
//  * the signature section decodes to exactly 20 bytes;
//  * a compressed body is one complete zlib stream (RFC 1950, no preset dictionary) with
//    nothing after it, inflating to at most kFlaskMaxPayloadSize bytes.
// itsdangerous itself is more lenient (it re-pads base64, skips non-alphabet characters,
// accepts the standard alphabet and leading zeros, and zlib ignores trailing data); none of
// that occurs in a cookie Flask produced. Returns nullopt for anything else. Not checked:
// whether Flask would have chosen to compress (that needs zlib's exact output), and the
// payload itself (JSON, UTF-8), which is the caller's.
std::optional<ParsedFlaskToken> ParseFlask(absl::string_view token);

// The same strict parse except the compressed body's contents: nothing is decompressed,
// so that the signature (which covers the compressed form) can be checked first and a forged
// cookie costs no inflate work. `payload` stays empty until ExpandFlaskPayload.
std::optional<ParsedFlaskToken> ParseFlaskSigned(absl::string_view token);
// Sets token->payload from token->body, inflating a compressed body (one complete zlib
// stream, no preset dictionary, nothing after it, at most kFlaskMaxPayloadSize bytes).
// False when it is not such a stream.
bool ExpandFlaskPayload(ParsedFlaskToken* token);

// Checks the signature of a parsed token (constant-time). Age (max_age) is the caller's.
bool CheckFlaskSignature(const crypto::Hmac& signer, const ParsedFlaskToken& token);

// A cheap shape check for dispatching between formats: true iff `token` has the dot
// structure of a Flask cookie (two dots, or three with a leading one). Native tokens
// ("st1." + base64url) have exactly one dot, so the two never overlap. A true result does
// not mean ParseFlask will succeed.
bool LooksLikeFlask(absl::string_view token);

}  // namespace sessiontoken::token

#endif  // SESSIONTOKEN_SERVER_TOKEN_FLASK_H_
