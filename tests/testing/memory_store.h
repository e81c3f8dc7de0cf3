// MemoryStore: an in-process store::Store for tests (and the reference the file and etcd
// stores are compared with). Thread-safe.
#ifndef SESSIONTOKEN_TESTS_TESTING_MEMORY_STORE_H_
#define SESSIONTOKEN_TESTS_TESTING_MEMORY_STORE_H_

#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "server/store/store.h"

namespace sessiontoken::store {

class MemoryStore final : public Store {
 public:
  absl::StatusOr<std::vector<std::string>> List() override;
  absl::StatusOr<VersionedBlob> Get(absl::string_view name) override;
  absl::StatusOr<uint64_t> Put(absl::string_view name, absl::string_view data,
                               uint64_t expected_version) override;

 private:
  absl::Mutex mu_;
  std::map<std::string, VersionedBlob, std::less<>> blobs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sessiontoken::store

#endif  // SESSIONTOKEN_TESTS_TESTING_MEMORY_STORE_H_
