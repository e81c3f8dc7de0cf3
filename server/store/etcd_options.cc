#include "server/store/etcd_options.h"

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sessiontoken::store {

absl::StatusOr<crypto::SecretBytes> ReadEtcdPassword(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pw = ss.str();
  while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
  crypto::SecretBytes out = crypto::SecretBytes::CopyFrom(pw);
  pw.assign(pw.size(), '\0');
  return out;
}

}  // namespace sessiontoken::store
