// Engine: the core of the service. Keeps the current snapshot of every keyring (readers
// take one atomic load, no lock), and applies admin changes as compare-and-swap writes to
// the Store followed by publishing the new snapshot. gRPC-free; the service layer only
// translates protos to these calls.
#ifndef SESSIONTOKEN_SERVER_ENGINE_ENGINE_H_
#define SESSIONTOKEN_SERVER_ENGINE_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/engine/audit.h"
#include "server/engine/limits.h"
#include "server/engine/observer.h"
#include "server/engine/revocations.h"
#include "server/format/keyring_signer.h"
#include "server/keyring/clock.h"
#include "server/keyring/keyring.h"
#include "server/keyring/policy.h"
#include "server/store/replicated_store.h"
#include "server/store/sealer.h"
#include "server/store/store.h"

namespace sessiontoken::engine {

struct EngineOptions {
  Limits limits;  // checked by Engine::New (ValidateLimits)
  // Keyring created on first start when the store is empty of it ("" = none).
  std::string default_keyring = "default";
  // Where admin operations are recorded (may be null). Not owned; must outlive the engine.
  AuditLog* audit_log = nullptr;
  // Keyrings whose stored revision may be lower than their high-water mark at start-up (an
  // operator restoring a backup on purpose). Every other rollback refuses the start.
  absl::flat_hash_set<std::string> accept_rollback;
  // The server-side default deadline of an admin change: how long (real time) it may wait
  // for other changes (each one fsync'ed write) before it gives up.
  absl::Duration admin_wait = absl::Seconds(10);
  // Replicas (NewReplica): this replica's presence id. The promotion gate trusts this
  // replica's own snapshot for its own entry.
  std::string replica_id;
  // Hears every Sign and Verify result (key usage, metrics); may be null. Not owned; must
  // outlive the engine.
  EngineObserver* observer = nullptr;
};

// True for the FailedPrecondition of a promotion that waits for replicas to load its key
// (nothing changed; a later attempt succeeds once they have it).
bool IsPromotionWaiting(const absl::Status& status);

// What the engine asks of the replica that feeds it (replica.h); consulted only on the
// rare paths (a token naming a key the snapshot lacks), never per call.
class ReplicaState {
 public:
  virtual ~ReplicaState() = default;
  // True when this replica cannot prove it has every key the others may sign with (its
  // presence lease is not confirmed live, or it has not reloaded since it lost it).
  virtual bool MayBeBehind() const = 0;
};

// Who asks for an admin change (recorded in the audit log) and until when it may wait for
// other changes to finish before it starts. A change that cannot start by its deadline fails
// with DEADLINE_EXCEEDED and changes nothing. The engine never waits longer than its
// `admin_wait` (the server-side default deadline), whatever the caller asks.
struct Actor {
  Actor(const char* n) : name(n) {}         // NOLINT: implicit on purpose
  Actor(absl::string_view n) : name(n) {}   // NOLINT
  Actor(const std::string& n) : name(n) {}  // NOLINT
  Actor(absl::string_view n, absl::Time d) : name(n), deadline(d) {}
  std::string name;
  absl::Time deadline = absl::InfiniteFuture();
};

// The result of an admin operation.
struct AdminOutcome {
  std::shared_ptr<const keyring::Keyring> keyring;  // the new snapshot
  uint32_t key_id = 0;                              // the key created or changed (0: none)
  uint32_t previous_primary_key_id = 0;             // primary before the operation
};
using RotateOutcome = AdminOutcome;

// The result of a Revoke: the entry now in force.
struct RevokeOutcome {
  int64_t revoked_at = 0;  // Unix seconds; a subject's cutoff
  int64_t drop_after = 0;  // Unix seconds: the entry is dropped after this
};

// What RewrapKeyrings did (engine_kek.cc).
struct RewrapReport {
  std::string kek_fingerprint;                     // the current KEK's
  std::vector<std::string> previous_fingerprints;  // the previous KEKs'
  int keyrings = 0;                                // stored keyrings looked at
  int rewrapped = 0;                               // keyrings resealed now
  int revocation_records = 0;                      // stored revocation shards looked at
  int revocation_records_rewrapped = 0;            // of them resealed now
  // Records (keyring or high-water mark) still not sealed with the current KEK afterwards,
  // one line each saying which and why (empty: the previous KEKs may be dropped).
  std::vector<std::string> remaining;
};

// A backup made by ExportBackup: the file's content and what it holds.
struct BackupExport {
  std::string file;  // store/backup_file.h
  int keyrings = 0;
  int revocation_records = 0;                 // revocation-list shards, attached to their keyrings
  std::vector<std::string> kek_fingerprints;  // of the KEKs its keyrings are sealed with
  std::string sha256_hex;
  absl::Time created_at;
};

class Engine {
  struct Entry {
    std::shared_ptr<const format::KeyringSigner> signer;  // holds the keyring snapshot
    uint64_t store_version = 0;
    // The keyring's revocation list (revocations.h); carried over when the keyring changes.
    std::shared_ptr<const RevocationList> revocations = RevocationList::Empty();
    const keyring::Keyring& keyring() const { return signer->keyring(); }
  };
  using Registry = absl::flat_hash_map<std::string, Entry>;

 public:
  // The keyrings as of one moment, for a series of calls (one batch): a single atomic load
  // instead of one per call. Holding a View keeps its snapshots alive: drop it soon.
  class View {
   private:
    friend class Engine;
    std::shared_ptr<const Registry> registry_;
  };
  View CurrentView() const;

  // Loads every stored keyring (any failure aborts: nothing is overwritten) and creates the
  // default keyring when it does not exist yet. A keyring whose stored revision is below its
  // high-water mark (a rolled-back file, which could bring back a key destroyed since) is
  // refused with FailedPrecondition unless named in options.accept_rollback.
  // `clock` must outlive the engine.
  static absl::StatusOr<std::unique_ptr<Engine>> New(std::unique_ptr<store::Store> store,
                                                     std::unique_ptr<store::Sealer> sealer,
                                                     const keyring::Clock* clock,
                                                     EngineOptions options);

  // Hot path; the edge where requests enter the core: every request limit (limits.h) is
  // checked here. InvalidArgument for bad requests (message names the field), NotFound for
  // an unknown keyring. `view` (optional) pins the snapshots to use (see View). `subject`
  // (optional, at most kMaxSubjectBytes) is bound into the v2 token and returned by Verify;
  // a Flask-format keyring refuses one (InvalidArgument). The result carries the token id.
  absl::StatusOr<format::SignResult> Sign(absl::string_view keyring, absl::string_view payload,
                                          absl::string_view audience, absl::Duration ttl,
                                          const View* view = nullptr,
                                          absl::string_view subject = {}) const;
  // `max_age` bounds the age of tokens whose format carries no expiry (Flask); unset, the
  // keyring's max TTL applies. The result of a v2 token carries its subject, token id and
  // issued-at once the MAC checked out; a sealed payload comes back as plaintext.
  absl::StatusOr<format::VerifyResult> Verify(absl::string_view keyring, absl::string_view token,
                                              absl::string_view audience,
                                              std::optional<absl::Duration> max_age = std::nullopt,
                                              const View* view = nullptr) const;

  // A replica's engine over a store shared with other replicas. It starts empty and not
  // ready (Sign, Verify and admin calls answer UNAVAILABLE) until the first
  // InstallSnapshot. On it, Rotate only stages (unless promote_now) and a change that makes
  // an existing key primary commits only while every announced replica has loaded the
  // keyring's current version (store::ReplicatedStore::PutIfPresenceUnchanged); a change
  // that lost a race with another replica is retried on the fresh value.
  static absl::StatusOr<std::unique_ptr<Engine>> NewReplica(
      std::unique_ptr<store::ReplicatedStore> store, std::unique_ptr<store::Sealer> sealer,
      const keyring::Clock* clock, EngineOptions options);
  // Replicas: installs every keyring of `snapshot` that is newer than the one held, then
  // is ready. A damaged, foreign or rolled-back record never replaces the last good copy:
  // each is described in the returned list (for the log), and the rest still installs.
  std::vector<std::string> InstallSnapshot(const store::StoreSnapshot& snapshot);
  // Replicas: the same for the changes a watch delivered.
  std::vector<std::string> ApplyEvents(const std::vector<store::KeyringEvent>& events);
  // Replicas: creates the default keyring when missing (another replica creating it at
  // the same moment is fine).
  absl::Status EnsureDefaultKeyring();
  // The replica that feeds this engine (not owned; must outlive the engine, or be reset).
  void SetReplicaState(const ReplicaState* state) { replica_state_.store(state); }
  // False only for a replica's engine before its first InstallSnapshot.
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  store::ReplicatedStore* replicated_store() const { return replicated_; }

  // The current snapshot of a keyring.
  absl::StatusOr<std::shared_ptr<const keyring::Keyring>> Get(absl::string_view keyring) const;

  // Admin operations. Each is persisted (compare-and-swap on the store version) before it
  // is published, recorded in the audit log with `caller`, and returns the new snapshot,
  // whose revision() is the revision it produced.
  //
  // Rotate stages a new key and promotes it at once when `promote_now` or the policy's
  // stage lead time is 0; otherwise Tick() promotes it after the lead time.
  absl::StatusOr<AdminOutcome> Rotate(const Actor& caller, absl::string_view keyring,
                                      bool promote_now = false,
                                      keyring::Algorithm algorithm = v1::ALGORITHM_UNSPECIFIED);
  absl::StatusOr<AdminOutcome> Promote(const Actor& caller, absl::string_view keyring,
                                       uint32_t key_id);
  absl::StatusOr<AdminOutcome> Disable(const Actor& caller, absl::string_view keyring,
                                       uint32_t key_id);
  absl::StatusOr<AdminOutcome> Enable(const Actor& caller, absl::string_view keyring,
                                      uint32_t key_id);
  absl::StatusOr<AdminOutcome> Destroy(const Actor& caller, absl::string_view keyring,
                                       uint32_t key_id);
  // Imports an existing secret (e.g. a Flask SECRET_KEY). The secret is only ever sealed.
  absl::StatusOr<AdminOutcome> Import(const Actor& caller, absl::string_view keyring,
                                      keyring::Algorithm algorithm, absl::string_view secret,
                                      keyring::KeyState state);
  absl::StatusOr<AdminOutcome> CreateKeyring(const Actor& caller, absl::string_view name,
                                             const v1::KeyringPolicy& policy,
                                             keyring::Algorithm algorithm = v1::HMAC_SHA256);
  absl::StatusOr<AdminOutcome> SetPolicy(const Actor& caller, absl::string_view keyring,
                                         const v1::KeyringPolicy& policy);
  // Revocation (docs/revocation.md). Allowed to whoever may Sign on the keyring (the
  // service checks). Each is stored (one shard record, compare-and-swap) before it is
  // published and audited (never with the token). RESOURCE_EXHAUSTED at the keyring's cap
  // (limits.max_revocations); an unreachable store is UNAVAILABLE and nothing is revoked.
  //
  // RevokeToken: `token` must verify for `audience` (VALID) and carry a token id (v2); the
  // entry is dropped at the token's expiry. Otherwise InvalidArgument naming the result. A
  // token already REVOKED is answered as revoked again (a retried call), nothing stored.
  absl::StatusOr<RevokeOutcome> RevokeToken(const Actor& caller, absl::string_view keyring,
                                            absl::string_view token, absl::string_view audience);
  // RevokeSubject: every token of `subject` issued at or before now is REVOKED; later ones
  // stay VALID. Dropped after now + the keyring's max token TTL + the allowed clock skew.
  absl::StatusOr<RevokeOutcome> RevokeSubject(const Actor& caller, absl::string_view keyring,
                                              absl::string_view subject);
  // Rewrites the shards of `keyring` that hold entries past their drop time (the scheduler
  // calls it every tick). Returns how many entries were dropped; a shard another replica
  // rewrote meanwhile is left to it.
  absl::StatusOr<size_t> PruneRevocations(absl::string_view keyring);
  // Entries `keyring` holds (0 for an unknown keyring).
  size_t RevocationCount(absl::string_view keyring) const;

  // KEK rotation: reseals with the current KEK every stored keyring (as a new revision,
  // audited "rewrap") and high-water mark still sealed with another KEK, then re-reads the
  // store to report what remains under another KEK. Audited "rewrap_keyrings" as a whole.
  absl::StatusOr<RewrapReport> RewrapKeyrings(const Actor& caller);
  // Every stored keyring, sealed as stored, in one backup file (one consistent moment: no
  // admin change of this engine runs meanwhile; replicas read one etcd revision). Any
  // keyring that does not open fails the backup (its error names it). Audited.
  absl::StatusOr<BackupExport> ExportBackup(const Actor& caller);
  // Uses `sealer` from now on (a KEK configuration reloaded on SIGHUP), once every stored
  // keyring and mark is sealed with one of its KEKs; otherwise FailedPrecondition naming the
  // first record and the fingerprint it needs, and the current sealer stays.
  absl::Status ReplaceSealer(std::unique_ptr<store::Sealer> sealer);
  // The current KEK's fingerprint and the previous ones'.
  std::string kek_fingerprint() const;
  std::vector<std::string> previous_kek_fingerprints() const;
  // Replicas: why this replica must not start (its first load found records sealed with a
  // KEK it lacks), or OK. The engine then stays not ready.
  absl::Status startup_failure() const;

  // Current snapshots of all keyrings, sorted by name.
  std::vector<std::shared_ptr<const keyring::Keyring>> ListKeyrings() const;

  // Applies the transitions `keyring`'s policy makes due at the clock's now, as one change
  // by "scheduler" (each transition audited). Returns them; empty when nothing was due.
  // The scheduler (scheduler.h) calls it for every keyring.
  absl::StatusOr<std::vector<keyring::Transition>> ApplyDue(absl::string_view keyring);

  const EngineOptions& options() const { return options_; }

 private:
  Engine(std::unique_ptr<store::Store> store, std::unique_ptr<store::Sealer> sealer,
         const keyring::Clock* clock, EngineOptions options)
      : store_(std::move(store)),
        sealer_(std::move(sealer)),
        clock_(clock),
        options_(std::move(options)) {}

  absl::Status Load();
  // Replicas: installs `blob` as keyring `name` unless it is not newer than the held copy
  // (nothing to do) or does not open / is a rollback (a problem, returned).
  std::optional<std::string> InstallRecord(const std::string& name,
                                           const store::VersionedBlob& blob, uint64_t mark_revision)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Replicas: re-reads keyring `name` from the store after a lost race (write_mu_ held).
  absl::Status Reread(absl::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Replicas: the put of a change that makes an existing key primary, gated on every
  // announced replica having loaded `current_version`.
  absl::StatusOr<uint64_t> PutGated(absl::string_view name, absl::string_view sealed,
                                    uint64_t current_version);
  // The UNAVAILABLE answer when this replica may lack the key `result` needed.
  absl::Status BehindError(const format::VerifyResult& result) const;
  // A keyring's high-water mark as stored: the revision and its store record's version.
  struct Mark {
    uint64_t revision = 0;  // 0 when the record is damaged
    uint64_t version = 0;
    absl::Status damage;      // why the record does not open (a start refuses; a change overwrites)
    bool current_kek = true;  // sealed with the current KEK (else rewritten at the next write)
  };
  // The mark of `name` (its store record is named MarkName(name)); nullopt when none.
  absl::StatusOr<std::optional<Mark>> ReadMark(absl::string_view name);
  // Opens stored keyring `name` and checks it against its high-water mark `mark` (rollback).
  absl::StatusOr<Entry> LoadOne(const std::string& name, const std::optional<Mark>& mark);
  // Sets `name`'s sealed high-water mark to `revision` over `current` (compare-and-swap on
  // its store record; nothing written when it already holds `revision`). The mark lives
  // beside the keyring, outside its record.
  absl::Status WriteMark(absl::string_view name, uint64_t revision,
                         const std::optional<Mark>& current);
  absl::StatusOr<Entry> Lookup(absl::string_view keyring) const;
  // Hot-path lookup in a pinned registry: no copies, no reference counting.
  absl::StatusOr<const Entry*> Find(const Registry& registry, absl::string_view keyring) const;
  // Seals `next`, writes it over `current` (compare-and-swap on the store version; 0 = the
  // keyring must not exist yet) and publishes it.
  absl::Status Commit(absl::string_view name, uint64_t current_version,
                      std::shared_ptr<const keyring::Keyring> next, bool gated = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // A change to one keyring: given its current entry (null when absent), the next snapshot,
  // or null for "nothing to commit". May fill in the outcome's key ids.
  using Change = std::function<absl::StatusOr<std::shared_ptr<const keyring::Keyring>>(
      const Entry* current, AdminOutcome* out)>;
  // Runs `attempt` (given its number, from 0) as the one writer: waits until `deadline`
  // (real time) for other changes, refuses before the first load, and on a replica runs it
  // again after a race lost to another replica (ABORTED, the store's version conflict), up
  // to 4 times in all. Returns the last attempt's status.
  absl::Status WriteWithRetries(absl::Time deadline,
                                const std::function<absl::Status(int attempt)>& attempt);
  // The transaction every admin change goes through: wait (until `deadline`, real time)
  // for other changes, look the keyring up, apply `change`, commit. No audit.
  absl::StatusOr<AdminOutcome> Transact(absl::Time deadline, absl::string_view keyring,
                                        const Change& change);
  // Transact for `caller` (deadline capped by admin_wait), then audit the outcome.
  absl::StatusOr<AdminOutcome> Mutate(const Actor& caller, absl::string_view operation,
                                      absl::string_view keyring, uint32_t key_id,
                                      const Change& change);
  // A change of an existing keyring's snapshot (Rotate, Promote...), through Mutate.
  absl::StatusOr<AdminOutcome> MutateExisting(
      const Actor& caller, absl::string_view operation, absl::string_view keyring, uint32_t key_id,
      const std::function<absl::StatusOr<std::shared_ptr<const keyring::Keyring>>(
          const keyring::Keyring&, AdminOutcome*)>& change);
  void Audit(const Actor& caller, absl::string_view operation, absl::string_view keyring,
             uint32_t key_id, const absl::StatusOr<AdminOutcome>& result) const;
  // An audit event of `caller`'s `operation` on `keyring`, at the engine's clock's now.
  AuditEvent NewAuditEvent(const Actor& caller, absl::string_view operation,
                           absl::string_view keyring) const;
  // One audit line for an operation on every keyring ("*"), e.g. a rewrap or a backup.
  void AuditAll(const Actor& caller, absl::string_view operation, absl::string_view outcome) const;
  // Rewraps keyring `name` (and its mark) when its record is not sealed with the current KEK;
  // true when the keyring was resealed.
  absl::StatusOr<bool> RewrapOne(const Actor& caller, const std::string& name);
  // Reseals revocation shard `record` when not sealed with the current KEK; true if it did.
  absl::StatusOr<bool> RewrapShard(const Actor& caller, const std::string& record);
  // Adds the keyrings among `records` (name, sealed blob) to `backup`, each with its
  // revocation shards; every record must open (write_mu_ held). *keks gets their KEKs.
  absl::Status AddToBackup(const std::vector<std::pair<std::string, std::string>>& records,
                           v1::BackupFile* backup, std::set<std::string>* keks) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Every record in the store (keyrings and marks) not sealed with the current KEK, one line
  // each (write_mu_ held).
  absl::StatusOr<std::vector<std::string>> NotCurrent() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Every stored keyring record (marks left out), by name, from one consistent read.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> StoredKeyrings();
  // Replicas: on the first load, the records of `snapshot` sealed with a KEK this engine
  // lacks make the start fail (startup_failure_).
  bool RefuseForeignKek(const store::StoreSnapshot& snapshot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  // Revocations (engine_revoke.cc). A change of one shard: given the list and the shard as
  // held, the next shard, or null for "nothing to write".
  using ShardChange = std::function<absl::StatusOr<std::shared_ptr<RevocationShard>>(
      const RevocationList& list, const RevocationShard& shard)>;
  // Waits (until `deadline`) for other changes, applies `change` to shard `shard` of
  // `keyring` and commits it; a replica that lost a race re-reads the shard and retries.
  absl::Status ChangeShard(absl::Time deadline, absl::string_view keyring, int shard,
                           const ShardChange& change);
  // Seals and writes `next` over the shard held (compare-and-swap), then publishes it.
  absl::Status CommitShard(absl::string_view keyring, int shard, uint64_t current_version,
                           std::shared_ptr<RevocationShard> next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Opens a stored shard record (DataLoss when damaged).
  absl::StatusOr<std::shared_ptr<RevocationShard>> OpenShard(
      const std::string& record, const store::VersionedBlob& blob) const;
  // Installs a stored shard record unless not newer than the one held; a problem otherwise.
  std::optional<std::string> InstallShard(const std::string& record,
                                          const store::VersionedBlob& blob)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Start-up: every revocation record among `names` into `reg` (any damage aborts).
  absl::Status LoadRevocations(const std::vector<std::string>& names, Registry* reg);
  void AuditRevoke(const Actor& caller, absl::string_view operation, absl::string_view keyring,
                   absl::string_view what, const absl::StatusOr<RevokeOutcome>& result) const;

  std::unique_ptr<store::Store> store_;
  // Used only with write_mu_ held (ReplaceSealer swaps it under that lock).
  std::unique_ptr<store::Sealer> sealer_;
  const keyring::Clock* clock_;
  const EngineOptions options_;
  // Admin changes run one at a time: a writer first waits (bounded by its deadline) for
  // `busy_` to clear, then holds write_mu_ (uncontended) while it commits.
  class WriterGuard;
  absl::Mutex busy_mu_;
  bool busy_ ABSL_GUARDED_BY(busy_mu_) = false;
  mutable absl::Mutex write_mu_;
  std::atomic<std::shared_ptr<const Registry>> registry_;
  store::ReplicatedStore* replicated_ = nullptr;  // == store_ for a replica, else null
  std::atomic<bool> ready_{true};
  std::atomic<const ReplicaState*> replica_state_{nullptr};
  absl::Status startup_failure_ ABSL_GUARDED_BY(write_mu_);
};

}  // namespace sessiontoken::engine

#endif  // SESSIONTOKEN_SERVER_ENGINE_ENGINE_H_
