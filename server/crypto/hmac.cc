#include "server/crypto/hmac.h"

#include <openssl/crypto.h>
#include <openssl/mem.h>
#include <openssl/sha.h>

#include <cstring>

#include "absl/status/status.h"

namespace sessiontoken::crypto {
namespace {

// HMAC (RFC 2104) over BoringSSL's SHA-1/SHA-256 block functions with the key schedule
// precomputed: the inner and outer hash states after absorbing key^ipad and key^opad. A MAC
// copies those plain structs, so it costs only the message blocks and allocates nothing
// (HMAC_CTX_copy_ex allocates three digest states per call). The states are key-equivalent:
// every copy is wiped after use, the originals in the destructor.
template <typename Ctx, int (*Init)(Ctx*), int (*Update)(Ctx*, const void*, size_t),
          int (*Final)(uint8_t*, Ctx*), uint8_t* (*OneShot)(const uint8_t*, size_t, uint8_t*),
          size_t kBlock, size_t kDigest>
class HmacImpl final : public Hmac {
 public:
  explicit HmacImpl(absl::string_view key) {
    uint8_t k[kBlock] = {};
    if (key.size() > kBlock) {
      OneShot(reinterpret_cast<const uint8_t*>(key.data()), key.size(), k);
    } else {
      std::memcpy(k, key.data(), key.size());
    }
    uint8_t pad[kBlock];
    for (size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x36;
    Init(&inner_);
    Update(&inner_, pad, kBlock);
    for (size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x5c;
    Init(&outer_);
    Update(&outer_, pad, kBlock);
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));
  }
  ~HmacImpl() override {
    OPENSSL_cleanse(&inner_, sizeof(inner_));
    OPENSSL_cleanse(&outer_, sizeof(outer_));
  }

  size_t tag_size() const override { return kDigest; }

  void Compute(std::initializer_list<absl::string_view> parts, uint8_t* out) const override {
    Ctx c = inner_;
    for (absl::string_view p : parts) Update(&c, p.data(), p.size());
    uint8_t inner_hash[kDigest];
    Final(inner_hash, &c);
    c = outer_;
    Update(&c, inner_hash, kDigest);
    Final(out, &c);
    OPENSSL_cleanse(&c, sizeof(c));
    OPENSSL_cleanse(inner_hash, sizeof(inner_hash));
  }

  bool Verify(std::initializer_list<absl::string_view> parts,
              absl::string_view tag) const override {
    uint8_t expected[kMaxTagSize];
    Compute(parts, expected);
    bool ok = ConstantTimeEquals(
        absl::string_view(reinterpret_cast<const char*>(expected), kDigest), tag);
    OPENSSL_cleanse(expected, sizeof(expected));
    return ok;
  }

 private:
  Ctx inner_;
  Ctx outer_;
};

using HmacSha256 = HmacImpl<SHA256_CTX, SHA256_Init, SHA256_Update, SHA256_Final, SHA256,
                            SHA256_CBLOCK, SHA256_DIGEST_LENGTH>;
using HmacSha1 =
    HmacImpl<SHA_CTX, SHA1_Init, SHA1_Update, SHA1_Final, SHA1, SHA_CBLOCK, SHA_DIGEST_LENGTH>;

}  // namespace

absl::StatusOr<std::unique_ptr<Hmac>> Hmac::New(HashFunction hash, absl::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("HMAC key must not be empty");
  if (hash == HashFunction::kSha1) return std::make_unique<HmacSha1>(key);
  return std::make_unique<HmacSha256>(key);
}

void Sha256(absl::string_view data, uint8_t out[32]) {
  SHA256(reinterpret_cast<const uint8_t*>(data.data()), data.size(), out);
}

}  // namespace sessiontoken::crypto
