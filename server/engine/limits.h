// Limits: every bound on a request and on the server's size/time settings, and every
// default of those settings, defined once here. Requests are checked where they enter the
// core (Engine::Sign / Verify); settings where they enter the server (app/settings.h and
// the config file checks). The layers below take these as preconditions.
#ifndef SESSIONTOKEN_SERVER_ENGINE_LIMITS_H_
#define SESSIONTOKEN_SERVER_ENGINE_LIMITS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/token/flask.h"
#include "server/token/native.h"

namespace sessiontoken::engine {

// Native payloads: the default and the highest configurable limit (every native token of
// that size stays under token::kMaxTokenSize, a browser cookie's budget).
inline constexpr size_t kDefaultMaxPayloadBytes = 2048;
inline constexpr size_t kMaxPayloadBytesCeiling = token::kMaxPayloadSize;
// Flask-format keyrings: the limit is on the cookie (token::kFlaskMaxTokenSize, after
// compression, checked when signing); the raw payload only bounds compression work.
inline constexpr size_t kFlaskMaxRawPayloadBytes = token::kFlaskMaxPayloadSize;
inline constexpr size_t kMaxAudienceBytes = token::kMaxAudienceSize;
// Sign's subject (native v2 tokens; Flask-format keyrings take none).
inline constexpr size_t kMaxSubjectBytes = token::kMaxSubjectSize;
// Longer tokens are MALFORMED without parsing (no format produces them).
inline constexpr size_t kMaxTokenBytes = token::kMaxTokenSize;
// Token lifetimes (Sign's ttl, Verify's max_age, the server's max_ttl): at least 1 s and
// at most 10 years.
inline constexpr absl::Duration kMinTtl = absl::Seconds(1);
inline constexpr absl::Duration kTtlCeiling = absl::Hours(24 * 366 * 10);
inline constexpr absl::Duration kDefaultMaxTtl = absl::Hours(24 * 31);
inline constexpr absl::Duration kDefaultMaxClockSkew = absl::Seconds(30);
inline constexpr absl::Duration kMaxClockSkewCeiling = absl::Hours(24);
// Revocation entries a keyring may hold (docs/revocation.md): the default and the highest
// configurable cap (every shard record then stays far below etcd's 1.5 MiB request limit).
inline constexpr size_t kDefaultMaxRevocations = 100000;
inline constexpr size_t kMaxRevocationsCeiling = 200000;

// The server's limits (flags / config file `limits`).
struct Limits {
  size_t max_payload_bytes = kDefaultMaxPayloadBytes;  // native tokens' raw payload
  absl::Duration max_ttl = kDefaultMaxTtl;
  absl::Duration max_clock_skew = kDefaultMaxClockSkew;
  size_t max_revocations = kDefaultMaxRevocations;  // per keyring
};

// InvalidArgument naming the setting ("max_payload_bytes", "max_ttl", "max_clock_skew")
// when a limit is outside what the service supports.
absl::Status ValidateLimits(const Limits& limits);

// InvalidArgument naming `field` when `size` exceeds `limit`.
absl::Status CheckSize(absl::string_view field, size_t size, size_t limit);
// A token lifetime from a request (`field`: "ttl" or "max_age"): whole seconds in
// [kMinTtl, max].
absl::Status CheckLifetime(absl::string_view field, absl::Duration d, absl::Duration max);

}  // namespace sessiontoken::engine

#endif  // SESSIONTOKEN_SERVER_ENGINE_LIMITS_H_
