#include "hmac_ideal.h"

#include <openssl/mem.h>
#include <openssl/sha.h>

#include <cstring>

namespace sessiontoken::bench {

struct IdealHmacSha256::State {
  SHA256_CTX inner;  // after absorbing key ^ ipad
  SHA256_CTX outer;  // after absorbing key ^ opad
};

IdealHmacSha256::IdealHmacSha256(absl::string_view key) : state_(std::make_unique<State>()) {
  uint8_t k[SHA256_CBLOCK] = {};
  if (key.size() > SHA256_CBLOCK) {
    SHA256(reinterpret_cast<const uint8_t*>(key.data()), key.size(), k);
  } else {
    std::memcpy(k, key.data(), key.size());
  }
  uint8_t pad[SHA256_CBLOCK];
  for (size_t i = 0; i < sizeof(pad); ++i) pad[i] = k[i] ^ 0x36;
  SHA256_Init(&state_->inner);
  SHA256_Update(&state_->inner, pad, sizeof(pad));
  for (size_t i = 0; i < sizeof(pad); ++i) pad[i] = k[i] ^ 0x5c;
  SHA256_Init(&state_->outer);
  SHA256_Update(&state_->outer, pad, sizeof(pad));
  OPENSSL_cleanse(k, sizeof(k));
  OPENSSL_cleanse(pad, sizeof(pad));
}

IdealHmacSha256::~IdealHmacSha256() { OPENSSL_cleanse(state_.get(), sizeof(State)); }

void IdealHmacSha256::Compute(std::initializer_list<absl::string_view> parts,
                              uint8_t out[32]) const {
  SHA256_CTX c = state_->inner;  // a 112-byte struct copy
  for (absl::string_view p : parts) {
    SHA256_Update(&c, reinterpret_cast<const uint8_t*>(p.data()), p.size());
  }
  uint8_t inner_hash[SHA256_DIGEST_LENGTH];
  SHA256_Final(inner_hash, &c);
  c = state_->outer;
  SHA256_Update(&c, inner_hash, sizeof(inner_hash));
  SHA256_Final(out, &c);
  OPENSSL_cleanse(&c, sizeof(c));
}

}  // namespace sessiontoken::bench
