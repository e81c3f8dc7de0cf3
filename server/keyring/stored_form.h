// Stored form: the conversion between a Keyring snapshot and v1::StoredKeyring, the message
// the sealer encrypts (proto/sessiontoken/v1/keyring.proto). It carries key material: only
// the sealer may hold it, and it wipes it after use.
#ifndef SESSIONTOKEN_SERVER_KEYRING_STORED_FORM_H_
#define SESSIONTOKEN_SERVER_KEYRING_STORED_FORM_H_

#include <memory>

#include "absl/status/statusor.h"
#include "server/keyring/keyring.h"
#include "sessiontoken/v1/keyring.pb.h"

namespace sessiontoken::keyring {

// Writes `k`, material included, into *out (cleared first). The caller seals and wipes it.
void ToStored(const Keyring& k, v1::StoredKeyring* out);
// The inverse of ToStored, with the invariants of Keyring::New. Wipes the material fields
// of *stored as it consumes them, also on failure.
absl::StatusOr<std::shared_ptr<const Keyring>> FromStored(v1::StoredKeyring* stored);

}  // namespace sessiontoken::keyring

#endif  // SESSIONTOKEN_SERVER_KEYRING_STORED_FORM_H_
