#include "server/crypto/hmac.h"

#include <openssl/crypto.h>
#include <openssl/digest.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/sha.h>

#include "absl/status/status.h"

namespace sessiontoken::crypto {
namespace {

class HmacImpl final : public Hmac {
 public:
  HmacImpl() { HMAC_CTX_init(&base_); }
  ~HmacImpl() override { HMAC_CTX_cleanup(&base_); }  // cleanup wipes the key pads

  absl::Status Init(HashFunction hash, absl::string_view key) {
    const EVP_MD* md = hash == HashFunction::kSha1 ? EVP_sha1() : EVP_sha256();
    tag_size_ = EVP_MD_size(md);
    if (!HMAC_Init_ex(&base_, key.data(), key.size(), md, nullptr)) {
      return absl::InternalError("HMAC_Init_ex failed");
    }
    return absl::OkStatus();
  }

  size_t tag_size() const override { return tag_size_; }

  void Compute(std::initializer_list<absl::string_view> parts, uint8_t* out) const override {
    HMAC_CTX ctx;
    HMAC_CTX_init(&ctx);
    // Copying the keyed state skips re-hashing the key pads for every message.
    HMAC_CTX_copy_ex(&ctx, &base_);
    for (absl::string_view p : parts) {
      HMAC_Update(&ctx, reinterpret_cast<const uint8_t*>(p.data()), p.size());
    }
    unsigned int len = 0;
    HMAC_Final(&ctx, out, &len);
    HMAC_CTX_cleanup(&ctx);
  }

  bool Verify(std::initializer_list<absl::string_view> parts,
              absl::string_view tag) const override {
    uint8_t expected[kMaxTagSize];
    Compute(parts, expected);
    bool ok = ConstantTimeEquals(
        absl::string_view(reinterpret_cast<const char*>(expected), tag_size_), tag);
    OPENSSL_cleanse(expected, sizeof(expected));
    return ok;
  }

 private:
  HMAC_CTX base_;
  size_t tag_size_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Hmac>> Hmac::New(HashFunction hash, absl::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("HMAC key must not be empty");
  auto h = std::make_unique<HmacImpl>();
  if (absl::Status s = h->Init(hash, key); !s.ok()) return s;
  return h;
}

namespace {
thread_local uint64_t constant_time_equals_calls = 0;
}  // namespace

uint64_t ConstantTimeEqualsCallsForTesting() { return constant_time_equals_calls; }

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  ++constant_time_equals_calls;
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void Sha256(absl::string_view data, uint8_t out[32]) {
  SHA256(reinterpret_cast<const uint8_t*>(data.data()), data.size(), out);
}

const void* HmacImplementationAddress() { return reinterpret_cast<const void*>(&HMAC_Init_ex); }

const char* CryptoLibraryVersion() { return OpenSSL_version(OPENSSL_VERSION); }

}  // namespace sessiontoken::crypto
