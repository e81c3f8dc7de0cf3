// The keyrings a config file lists: each is created when missing and gets the configured
// policy when it differs (the file is the source of truth for the policies it names).
#ifndef SESSIONTOKEN_SERVER_APP_CONFIGURED_KEYRINGS_H_
#define SESSIONTOKEN_SERVER_APP_CONFIGURED_KEYRINGS_H_

#include <vector>

#include "absl/status/status.h"
#include "server/engine/engine.h"
#include "sessiontoken/v1/config.pb.h"

namespace sessiontoken::app {

// Applies `keyrings` in order, as caller "config" (audited). Stops at the first failure,
// whose message names the keyring; keyrings applied before it stay applied.
absl::Status ApplyConfiguredKeyrings(engine::Engine& engine,
                                     const std::vector<v1::KeyringConfig>& keyrings);

}  // namespace sessiontoken::app

#endif  // SESSIONTOKEN_SERVER_APP_CONFIGURED_KEYRINGS_H_
