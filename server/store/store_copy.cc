#include "server/store/store_copy.h"

#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sessiontoken::store {
namespace {

// Version of each keyring that already exists in `to` (0 when absent).
absl::StatusOr<std::map<std::string, uint64_t>> ExistingVersions(
    Store& to, const std::map<std::string, std::string>& blobs) {
  std::map<std::string, uint64_t> versions;
  for (const auto& [name, blob] : blobs) {
    absl::StatusOr<VersionedBlob> cur = to.Get(name);
    if (cur.ok()) {
      versions[name] = cur->version;
    } else if (absl::IsNotFound(cur.status())) {
      versions[name] = 0;
    } else {
      return absl::Status(cur.status().code(),
                          absl::StrCat("destination keyring ", name, ": ", cur.status().message(),
                                       " (nothing copied)"));
    }
  }
  return versions;
}

}  // namespace

absl::StatusOr<CopyReport> CopyKeyrings(Store& from, Store& to, const CopyOptions& options) {
  absl::StatusOr<std::vector<std::string>> names = from.List();
  if (!names.ok()) return names.status();
  std::map<std::string, std::string> blobs;
  for (const std::string& name : *names) {
    absl::StatusOr<VersionedBlob> b = from.Get(name);
    if (!b.ok()) {
      return absl::Status(
          b.status().code(),
          absl::StrCat("source keyring ", name, ": ", b.status().message(), " (nothing copied)"));
    }
    blobs[name] = std::move(b->data);
  }
  absl::StatusOr<std::map<std::string, uint64_t>> versions = ExistingVersions(to, blobs);
  if (!versions.ok()) return versions.status();
  std::vector<std::string> existing;
  for (const auto& [name, version] : *versions) {
    if (version != 0) existing.push_back(name);
  }
  if (!existing.empty() && !options.overwrite) {
    return absl::FailedPreconditionError(
        absl::StrCat("destination already holds keyrings [", absl::StrJoin(existing, ","),
                     "]; nothing copied (pass --overwrite to replace them)"));
  }
  CopyReport report;
  for (const auto& [name, blob] : blobs) {
    const uint64_t expected = (*versions)[name];
    absl::StatusOr<uint64_t> put = to.Put(name, blob, expected);
    if (!put.ok()) {
      std::vector<std::string> done = report.created;
      done.insert(done.end(), report.replaced.begin(), report.replaced.end());
      return absl::Status(put.status().code(),
                          absl::StrCat("keyring ", name, ": ", put.status().message(),
                                       " (already copied: [", absl::StrJoin(done, ","), "])"));
    }
    (expected == 0 ? report.created : report.replaced).push_back(name);
  }
  return report;
}

}  // namespace sessiontoken::store
