// Revocations: a keyring's revocation list as an immutable snapshot that Verify reads
// without locks (held in the engine's registry beside the keyring). The list is split into
// kRevocationShards shards, each stored as one sealed record "_rev.<keyring>.<NNN>", so a
// Revoke rewrites one small record and every record stays far below etcd's request limit.
// Entries: a token id (that one session) or a subject with a cutoff (its sessions issued at
// or before the cutoff). Each entry carries the time after which no token it matches can be
// valid; pruning drops it then (docs/revocation.md).
#ifndef SESSIONTOKEN_SERVER_ENGINE_REVOCATIONS_H_
#define SESSIONTOKEN_SERVER_ENGINE_REVOCATIONS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/store/sealer.h"
#include "sessiontoken/v1/keyring.pb.h"

namespace sessiontoken::engine {

inline constexpr int kRevocationShards = 128;
// Store record names of revocation shards: "_rev.<keyring>.<shard, 3 digits>".
inline constexpr absl::string_view kRevocationPrefix = store::kRevocationRecordPrefix;
std::string RevocationRecordName(absl::string_view keyring, int shard);
// The keyring and shard a record name names; nullopt for any other record.
struct RevocationRecord {
  std::string keyring;
  int shard = 0;
};
std::optional<RevocationRecord> ParseRevocationRecordName(absl::string_view record);

// The shard that holds a token id / a subject. Stable across processes and builds (a fixed
// multiply-xorshift hash), so that every replica reads and writes the same record for the
// same entry.
int TokenShard(absl::string_view token_id);
int SubjectShard(absl::string_view subject);
// The stable hash behind them ('t' for token ids, 's' for subjects).
uint64_t RevocationHash(char kind, absl::string_view key);

// One shard: immutable once published.
class RevocationShard {
 public:
  struct Subject {
    int64_t cutoff = 0;      // tokens issued at or before this (Unix seconds) are revoked
    int64_t drop_after = 0;  // Unix seconds
  };
  // The shard as stored under store version `version` (0: not stored yet).
  static absl::StatusOr<std::shared_ptr<RevocationShard>> FromStored(
      const v1::StoredRevocations& stored, uint64_t version);
  void ToStored(absl::string_view keyring, int shard, v1::StoredRevocations* out) const;

  // A copy without the entries whose drop time is at or before `now`.
  std::shared_ptr<RevocationShard> Pruned(int64_t now) const;
  // Adds (or extends) an entry; the later cutoff / drop time wins.
  void AddToken(absl::string_view token_id, int64_t drop_after);
  void AddSubject(absl::string_view subject, int64_t cutoff, int64_t drop_after);

  size_t size() const { return tokens_.size() + subjects_.size(); }
  uint64_t version() const { return version_; }
  void set_version(uint64_t v) { version_ = v; }
  // The earliest drop time of any entry (INT64_MAX when empty): pruning is due then.
  int64_t earliest_drop() const { return earliest_drop_; }
  // Drop time of a revoked token id, nullopt when not revoked.
  std::optional<int64_t> FindToken(absl::string_view token_id) const;
  const Subject* FindSubject(absl::string_view subject) const;
  // Calls fn(RevocationHash(...)) for every entry (builds the list's filter).
  template <typename Fn>
  void ForEachHash(Fn fn) const {
    for (const auto& [id, drop] : tokens_) fn(RevocationHash('t', id));
    for (const auto& [subject, s] : subjects_) fn(RevocationHash('s', subject));
  }

 private:
  void Recompute();
  uint64_t version_ = 0;
  int64_t earliest_drop_ = INT64_MAX;
  absl::flat_hash_map<std::string, int64_t> tokens_;  // token id -> drop time
  absl::flat_hash_map<std::string, Subject> subjects_;
};

// A keyring's whole list: one pointer per shard (shards not stored share one empty shard),
// plus a 128 KiB filter (two bits per entry, both in one 64-bit word) that answers most lookups of
// tokens that are not revoked from the CPU cache, before any hash map is touched. A filter hit is
// confirmed in the shard's map (exact); entries dropped leave stale bits until the next prune
// rebuilds it (false positives only cost the map lookup).
class RevocationList {
 public:
  static std::shared_ptr<const RevocationList> Empty();
  // A copy with shard `index` replaced.
  std::shared_ptr<const RevocationList> With(int index,
                                             std::shared_ptr<const RevocationShard> shard) const;
  const RevocationShard& shard(int index) const { return *shards_[index]; }
  // Entries held (expired ones count until pruned).
  size_t size() const { return size_; }

  // Hot path, O(1): true when the token (its id, subject and issued-at) is revoked. Empty
  // id / subject (v1 and Flask tokens) match nothing.
  bool IsRevoked(absl::string_view token_id, absl::string_view subject, int64_t issued_at) const {
    if (size_ == 0) return false;
    return RevokedSlow(token_id, subject, issued_at);
  }

 private:
  static constexpr size_t kFilterWords = size_t{1} << 14;  // 128 KiB
  using Filter = std::vector<uint64_t>;                    // kFilterWords words
  static uint64_t FilterMask(uint64_t h);
  static size_t FilterWord(uint64_t h);
  static void Mark(Filter* f, uint64_t h);
  bool MayHold(uint64_t h) const;
  bool RevokedSlow(absl::string_view token_id, absl::string_view subject, int64_t issued_at) const;
  std::array<std::shared_ptr<const RevocationShard>, kRevocationShards> shards_;
  std::shared_ptr<const Filter> filter_;  // null while empty
  size_t size_ = 0;
};

}  // namespace sessiontoken::engine

#endif  // SESSIONTOKEN_SERVER_ENGINE_REVOCATIONS_H_
