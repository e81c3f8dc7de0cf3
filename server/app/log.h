// Server log lines on stderr: "<UTC time> <LEVEL> <message>". Never pass a secret.
#ifndef SESSIONTOKEN_SERVER_APP_LOG_H_
#define SESSIONTOKEN_SERVER_APP_LOG_H_

#include "absl/strings/string_view.h"

namespace sessiontoken::app {

void Log(absl::string_view level, absl::string_view message);

}  // namespace sessiontoken::app

#endif  // SESSIONTOKEN_SERVER_APP_LOG_H_
