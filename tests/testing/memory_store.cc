#include "tests/testing/memory_store.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sessiontoken::store {

absl::StatusOr<std::vector<std::string>> MemoryStore::List() {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, blob] : blobs_) names.push_back(name);
  return names;
}

absl::StatusOr<VersionedBlob> MemoryStore::Get(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = blobs_.find(name);
  if (it == blobs_.end()) return absl::NotFoundError(absl::StrCat("keyring ", name, " not stored"));
  return it->second;
}

absl::StatusOr<uint64_t> MemoryStore::Put(absl::string_view name, absl::string_view data,
                                          uint64_t expected_version) {
  absl::MutexLock lock(&mu_);
  auto it = blobs_.find(name);
  uint64_t current = it == blobs_.end() ? 0 : it->second.version;
  if (current != expected_version) {
    return absl::AbortedError(absl::StrCat("keyring ", name, ": version conflict (expected ",
                                           expected_version, ", found ", current, ")"));
  }
  VersionedBlob& b = blobs_[std::string(name)];
  b.data = std::string(data);
  b.version = current + 1;
  return b.version;
}

}  // namespace sessiontoken::store
