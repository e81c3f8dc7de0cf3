#include "server/token/base64url.h"

#include <array>
#include <cstdint>

namespace sessiontoken::token {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr std::array<int8_t, 256> kDecode = MakeDecodeTable();

}  // namespace

void Base64UrlEncodeAppend(absl::string_view in, std::string* out) {
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  size_t n = in.size();
  size_t pos = out->size();
  out->resize(pos + Base64UrlEncodedSize(n));
  char* o = out->data() + pos;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    *o++ = kAlphabet[(v >> 18) & 63];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = kAlphabet[(v >> 6) & 63];
    *o++ = kAlphabet[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = uint32_t{p[i]} << 16;
    *o++ = kAlphabet[(v >> 18) & 63];
    *o++ = kAlphabet[(v >> 12) & 63];
  } else if (n - i == 2) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    *o++ = kAlphabet[(v >> 18) & 63];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = kAlphabet[(v >> 6) & 63];
  }
}

std::string Base64UrlEncode(absl::string_view in) {
  std::string out;
  Base64UrlEncodeAppend(in, &out);
  return out;
}

bool Base64UrlDecodeStrict(absl::string_view in, std::string* out) {
  if (in.size() % 4 == 1) return false;
  out->resize(Base64UrlDecodedSize(in.size()));
  return Base64UrlDecodeStrict(in, out->data());
}

bool Base64UrlDecodeStrict(absl::string_view in, char* out) {
  size_t n = in.size();
  if (n % 4 == 1) return false;
  auto* o = reinterpret_cast<uint8_t*>(out);
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  size_t i = 0;
  int bad = 0;
  for (; i + 4 <= n; i += 4) {
    int a = kDecode[p[i]], b = kDecode[p[i + 1]], c = kDecode[p[i + 2]], d = kDecode[p[i + 3]];
    bad |= a | b | c | d;
    uint32_t v = (uint32_t(a) << 18) | (uint32_t(b) << 12) | (uint32_t(c) << 6) | uint32_t(d);
    *o++ = static_cast<uint8_t>(v >> 16);
    *o++ = static_cast<uint8_t>(v >> 8);
    *o++ = static_cast<uint8_t>(v);
  }
  size_t rest = n - i;
  if (rest == 2) {
    int a = kDecode[p[i]], b = kDecode[p[i + 1]];
    bad |= a | b;
    if (b & 0x0f) return false;  // non-canonical: unused low bits set
    *o++ = static_cast<uint8_t>((a << 2) | (b >> 4));
  } else if (rest == 3) {
    int a = kDecode[p[i]], b = kDecode[p[i + 1]], c = kDecode[p[i + 2]];
    bad |= a | b | c;
    if (c & 0x03) return false;
    *o++ = static_cast<uint8_t>((a << 2) | (b >> 4));
    *o++ = static_cast<uint8_t>((b << 4) | (c >> 2));
  }
  return bad >= 0;  // any -1 (invalid character) makes the OR negative
}

}  // namespace sessiontoken::token
