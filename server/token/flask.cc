#include "server/token/flask.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "server/crypto/secret_bytes.h"
#include "server/token/base64url.h"

namespace sessiontoken::token {
namespace {

constexpr char kSep = '.';

// zlib.compress(data) in Python: level 6 (Z_DEFAULT_COMPRESSION), 32 KiB window, memLevel 8,
// default strategy, one Z_FINISH call — what compress2 does. compress2 sets up (and the
// kernel faults in) ~260 KB of deflate state on every call; a per-thread stream is reset
// instead, which gives the same bytes in a fraction of the time.
class ThreadDeflater {
 public:
  ThreadDeflater() {
    std::memset(&zs_, 0, sizeof(zs_));
    ok_ = deflateInit(&zs_, Z_DEFAULT_COMPRESSION) == Z_OK;
  }
  ~ThreadDeflater() {
    if (ok_) deflateEnd(&zs_);
  }
  std::optional<std::string> Deflate(absl::string_view in) {
    if (!ok_ || deflateReset(&zs_) != Z_OK) return std::nullopt;
    std::string out(deflateBound(&zs_, static_cast<uLong>(in.size())), '\0');
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(in.size());
    zs_.next_out = reinterpret_cast<Bytef*>(out.data());
    zs_.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&zs_, Z_FINISH);
    const size_t produced = out.size() - zs_.avail_out;
    if (rc != Z_STREAM_END) return std::nullopt;
    out.resize(produced);
    return out;
  }

 private:
  z_stream zs_;
  bool ok_ = false;
};

std::optional<std::string> Deflate(absl::string_view in) {
  thread_local ThreadDeflater deflater;
  return deflater.Deflate(in);
}

// Inflates exactly one zlib stream that must span all of `in` and produce at most
// `max_out` bytes. The output buffer doubles up to max_out + 1 bytes and no further, with
// exact allocations (std::string::resize would round capacity up to twice the old one),
// so memory stays O(max_out) whatever the compression ratio of the input.
bool InflateBounded(absl::string_view in, size_t max_out, std::string* out) {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  if (inflateInit(&zs) != Z_OK) return false;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  // One byte of headroom above max_out tells "exactly max_out" from "more".
  const size_t cap = max_out + 1;
  std::string buf(std::min(cap, std::max<size_t>(256, in.size() * 4)), '\0');
  size_t produced = 0;
  int rc = Z_OK;
  for (;;) {
    if (produced == buf.size()) {
      if (buf.size() == cap) break;  // full at the cap: too large
      std::string bigger(std::min(cap, buf.size() * 2), '\0');
      std::memcpy(bigger.data(), buf.data(), produced);
      buf.swap(bigger);
    }
    zs.next_out = reinterpret_cast<Bytef*>(buf.data() + produced);
    zs.avail_out = static_cast<uInt>(buf.size() - produced);
    rc = inflate(&zs, Z_NO_FLUSH);
    produced = buf.size() - zs.avail_out;
    if (rc == Z_STREAM_END) break;
    // Z_BUF_ERROR, or no input left with output space to spare: the stream is truncated.
    if (rc != Z_OK || (zs.avail_out != 0 && zs.avail_in == 0)) break;
  }
  const bool ok = rc == Z_STREAM_END && zs.avail_in == 0 && produced <= max_out;
  inflateEnd(&zs);
  if (!ok) return false;
  buf.resize(produced);  // shrinking never reallocates
  *out = std::move(buf);
  return true;
}

// itsdangerous's int_to_bytes: big-endian with leading zero bytes stripped (0 -> "").
std::string TimestampBytes(uint64_t v) {
  char buf[8];
  for (int i = 7; i >= 0; --i, v >>= 8) buf[i] = static_cast<char>(v & 0xff);
  size_t skip = 0;
  while (skip < 8 && buf[skip] == 0) ++skip;
  return std::string(buf + skip, 8 - skip);
}

}  // namespace

absl::StatusOr<std::unique_ptr<crypto::Hmac>> DeriveFlaskSigner(absl::string_view secret,
                                                                absl::string_view salt) {
  if (secret.empty()) return absl::InvalidArgumentError("Flask secret key must not be empty");
  auto outer = crypto::Hmac::New(crypto::HashFunction::kSha1, secret);
  if (!outer.ok()) return outer.status();
  crypto::SecretBytes derived(kFlaskSignatureSize);
  (*outer)->Compute({salt}, derived.data());
  return crypto::Hmac::New(crypto::HashFunction::kSha1, derived.view());
}

std::string SignFlask(const crypto::Hmac& signer, absl::string_view payload, int64_t timestamp) {
  // URLSafeSerializerMixin.dump_payload: compress when that saves at least 2 bytes, i.e.
  // when len(compressed) < len(json) - 1 (the "." marker costs one).
  std::optional<std::string> compressed = Deflate(payload);
  const bool compress = compressed.has_value() && compressed->size() + 1 < payload.size();
  absl::string_view body = compress ? absl::string_view(*compressed) : payload;
  std::string ts = TimestampBytes(static_cast<uint64_t>(timestamp));

  std::string token;
  token.reserve(1 + Base64UrlEncodedSize(body.size()) + 1 + Base64UrlEncodedSize(ts.size()) + 1 +
                Base64UrlEncodedSize(kFlaskSignatureSize));
  if (compress) token.push_back(kSep);
  Base64UrlEncodeAppend(body, &token);
  token.push_back(kSep);
  Base64UrlEncodeAppend(ts, &token);
  // TimestampSigner.sign: signature over value + sep + timestamp.
  uint8_t sig[crypto::Hmac::kMaxTagSize];
  signer.Compute({token}, sig);
  token.push_back(kSep);
  Base64UrlEncodeAppend(absl::string_view(reinterpret_cast<const char*>(sig), signer.tag_size()),
                        &token);
  return token;
}

std::optional<ParsedFlaskToken> ParseFlaskSigned(absl::string_view token) {
  if (token.size() > kFlaskMaxTokenSize) return std::nullopt;
  // Split like itsdangerous: signature after the last dot, timestamp before it.
  const size_t sig_dot = token.rfind(kSep);
  if (sig_dot == absl::string_view::npos || sig_dot == 0) return std::nullopt;
  const size_t ts_dot = token.rfind(kSep, sig_dot - 1);
  if (ts_dot == absl::string_view::npos) return std::nullopt;
  absl::string_view body = token.substr(0, ts_dot);
  absl::string_view ts_text = token.substr(ts_dot + 1, sig_dot - ts_dot - 1);
  absl::string_view sig_text = token.substr(sig_dot + 1);

  ParsedFlaskToken t;
  t.compressed = !body.empty() && body.front() == kSep;
  if (t.compressed) body.remove_prefix(1);
  // Any remaining dot in the body is not base64url and fails here.

  if (sig_text.size() != Base64UrlEncodedSize(kFlaskSignatureSize) ||
      !Base64UrlDecodeStrict(sig_text, &t.signature)) {
    return std::nullopt;
  }

  std::string ts;
  if (ts_text.size() > Base64UrlEncodedSize(8) || !Base64UrlDecodeStrict(ts_text, &ts)) {
    return std::nullopt;
  }
  // Canonical: no leading zero byte (0 is ""), and the value fits int64.
  if (!ts.empty() && (ts[0] == '\0' || (ts.size() == 8 && (ts[0] & 0x80)))) return std::nullopt;
  uint64_t v = 0;
  for (char c : ts) v = (v << 8) | static_cast<uint8_t>(c);
  t.timestamp = static_cast<int64_t>(v);

  if (!Base64UrlDecodeStrict(body, &t.body)) return std::nullopt;
  t.signed_part = std::string(token.substr(0, sig_dot));
  return t;
}

bool ExpandFlaskPayload(ParsedFlaskToken* t) {
  if (!t->compressed) {
    t->payload = t->body;
    return true;
  }
  return InflateBounded(t->body, kFlaskMaxPayloadSize, &t->payload);
}

std::optional<ParsedFlaskToken> ParseFlask(absl::string_view token) {
  std::optional<ParsedFlaskToken> t = ParseFlaskSigned(token);
  if (!t.has_value() || !ExpandFlaskPayload(&*t)) return std::nullopt;
  return t;
}

bool CheckFlaskSignature(const crypto::Hmac& signer, const ParsedFlaskToken& token) {
  return signer.Verify({token.signed_part}, token.signature);
}

bool LooksLikeFlask(absl::string_view token) {
  const size_t dots = std::count(token.begin(), token.end(), kSep);
  return dots == 2 || (dots == 3 && token.front() == kSep);
}

}  // namespace sessiontoken::token
