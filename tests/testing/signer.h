// Signer(keyring): the format::KeyringSigner of a snapshot, for tests that sign and verify
// with a keyring directly (the engine builds one per published snapshot).
#ifndef SESSIONTOKEN_TESTS_TESTING_SIGNER_H_
#define SESSIONTOKEN_TESTS_TESTING_SIGNER_H_

#include <memory>

#include "gtest/gtest.h"
#include "server/format/keyring_signer.h"

namespace sessiontoken::keyring {

inline std::shared_ptr<const format::KeyringSigner> Signer(
    const std::shared_ptr<const Keyring>& keyring) {
  auto signer = format::KeyringSigner::New(keyring);
  EXPECT_TRUE(signer.ok()) << signer.status();
  return signer.ok() ? *signer : nullptr;
}

}  // namespace sessiontoken::keyring

#endif  // SESSIONTOKEN_TESTS_TESTING_SIGNER_H_
