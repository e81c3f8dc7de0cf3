#include "server/service/admin_service.h"

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/crypto/secret_bytes.h"
#include "server/crypto/secret_strength.h"
#include "server/service/status.h"

namespace sessiontoken::service {
namespace {

grpc::Status Required(absl::string_view field) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat(field, ": required"));
}

grpc::Status Reply(const absl::StatusOr<engine::AdminOutcome>& r, v1::KeyringInfo* resp) {
  if (!r.ok()) return ToGrpc(r.status());
  ToKeyringInfo(*r->keyring, resp);
  return grpc::Status::OK;
}

}  // namespace

void ToKeyInfo(const keyring::KeyMetadata& md, v1::KeyInfo* out) {
  out->set_key_id(md.id);
  out->set_algorithm(md.algorithm);
  out->set_state(md.state);
  out->mutable_created_at()->set_seconds(absl::ToUnixSeconds(md.created_at));
  out->mutable_state_changed_at()->set_seconds(absl::ToUnixSeconds(md.state_changed_at));
}

void ToKeyringInfo(const keyring::Keyring& kr, v1::KeyringInfo* out) {
  out->set_name(kr.name());
  *out->mutable_policy() = kr.policy();
  for (const auto& k : kr.keys()) ToKeyInfo(k->metadata(), out->add_keys());
  out->set_primary_key_id(kr.primary().id());
  out->set_revision(kr.revision());
  out->mutable_created_at()->set_seconds(absl::ToUnixSeconds(kr.created_at()));
}

namespace {
// The caller and its deadline, for the engine (which also caps it by its own default).
engine::Actor ActorOf(grpc::ServerContext* ctx, const std::string& who) {
  if (ctx == nullptr) return engine::Actor(who);
  const auto d = ctx->deadline();
  if (d == std::chrono::system_clock::time_point::max()) return engine::Actor(who);
  return engine::Actor(who, absl::FromChrono(d));
}
}  // namespace

grpc::Status KeyAdminService::Admit(grpc::ServerContext* ctx, absl::string_view keyring,
                                    absl::string_view rpc, std::string* audit_name,
                                    absl::string_view field) const {
  // Before authorization: a denial quotes the name (in the reply and the audit log).
  if (absl::Status s = keyring::ValidateKeyringName(keyring); !s.ok()) {
    absl::string_view why = s.message();
    absl::ConsumePrefix(&why, "keyring: ");
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat(field, ": ", why));
  }
  Caller caller;
  if (ctx != nullptr) caller = auth_ != nullptr ? auth_->Identify(*ctx) : Caller{{}, ctx->peer()};
  *audit_name = caller.audit_name().empty() ? "local" : caller.audit_name();
  if (auth_ == nullptr) return grpc::Status::OK;
  return auth_->Check(caller, v1::AuthConfig::ADMIN, keyring, rpc);
}

grpc::Status KeyAdminService::Rotate(grpc::ServerContext* ctx, const v1::RotateRequest* req,
                                     v1::RotateResponse* resp) {
  if (req->keyring().empty()) return Required("keyring");
  std::string who;
  if (grpc::Status s = Admit(ctx, req->keyring(), "Rotate", &who); !s.ok()) return s;
  absl::StatusOr<engine::AdminOutcome> r =
      engine_->Rotate(ActorOf(ctx, who), req->keyring(), req->promote_now(), req->algorithm());
  if (!r.ok()) return ToGrpc(r.status());
  ToKeyInfo(r->keyring->Find(r->key_id)->metadata(), resp->mutable_new_key());
  resp->set_previous_primary_key_id(r->previous_primary_key_id);
  resp->set_revision(r->keyring->revision());
  return grpc::Status::OK;
}

grpc::Status KeyAdminService::ListKeys(grpc::ServerContext* ctx, const v1::ListKeysRequest* req,
                                       v1::ListKeysResponse* resp) {
  if (req->keyring().empty()) return Required("keyring");
  std::string who;
  if (grpc::Status s = Admit(ctx, req->keyring(), "ListKeys", &who); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<const keyring::Keyring>> kr = engine_->Get(req->keyring());
  if (!kr.ok()) return ToGrpc(kr.status());
  resp->set_keyring((*kr)->name());
  for (const auto& k : (*kr)->keys()) ToKeyInfo(k->metadata(), resp->add_keys());
  resp->set_primary_key_id((*kr)->primary().id());
  resp->set_revision((*kr)->revision());
  return grpc::Status::OK;
}

grpc::Status KeyAdminService::PromoteKey(grpc::ServerContext* ctx, const v1::KeyRequest* req,
                                         v1::KeyringInfo* resp) {
  if (req->keyring().empty()) return Required("keyring");
  if (req->key_id() == 0) return Required("key_id");
  std::string who;
  if (grpc::Status s = Admit(ctx, req->keyring(), "PromoteKey", &who); !s.ok()) return s;
  return Reply(engine_->Promote(ActorOf(ctx, who), req->keyring(), req->key_id()), resp);
}

grpc::Status KeyAdminService::DisableKey(grpc::ServerContext* ctx, const v1::KeyRequest* req,
                                         v1::KeyringInfo* resp) {
  if (req->keyring().empty()) return Required("keyring");
  if (req->key_id() == 0) return Required("key_id");
  std::string who;
  if (grpc::Status s = Admit(ctx, req->keyring(), "DisableKey", &who); !s.ok()) return s;
  return Reply(engine_->Disable(ActorOf(ctx, who), req->keyring(), req->key_id()), resp);
}

grpc::Status KeyAdminService::EnableKey(grpc::ServerContext* ctx, const v1::KeyRequest* req,
                                        v1::KeyringInfo* resp) {
  if (req->keyring().empty()) return Required("keyring");
  if (req->key_id() == 0) return Required("key_id");
  std::string who;
  if (grpc::Status s = Admit(ctx, req->keyring(), "EnableKey", &who); !s.ok()) return s;
  return Reply(engine_->Enable(ActorOf(ctx, who), req->keyring(), req->key_id()), resp);
}

grpc::Status KeyAdminService::DestroyKey(grpc::ServerContext* ctx, const v1::KeyRequest* req,
                                         v1::KeyringInfo* resp) {
  if (req->keyring().empty()) return Required("keyring");
  if (req->key_id() == 0) return Required("key_id");
  std::string who;
  if (grpc::Status s = Admit(ctx, req->keyring(), "DestroyKey", &who); !s.ok()) return s;
  return Reply(engine_->Destroy(ActorOf(ctx, who), req->keyring(), req->key_id()), resp);
}

grpc::Status KeyAdminService::ImportKey(grpc::ServerContext* ctx, const v1::ImportKeyRequest* req,
                                        v1::ImportKeyResponse* resp) {
  // The request is ours until we return: wipe its copy of the secret on every path (the
  // keyring keeps its own copy in SecretBytes).
  std::string* secret = const_cast<v1::ImportKeyRequest*>(req)->mutable_secret();
  absl::Cleanup wipe = [secret] { crypto::SecureWipe(secret->data(), secret->size()); };
  if (req->keyring().empty()) return Required("keyring");
  if (req->algorithm() == v1::ALGORITHM_UNSPECIFIED) return Required("algorithm");
  if (req->secret().empty()) return Required("secret");
  std::string who;
  if (grpc::Status s = Admit(ctx, req->keyring(), "ImportKey", &who); !s.ok()) return s;
  const crypto::SecretStrength strength = crypto::EstimateSecretStrength(req->secret());
  absl::StatusOr<engine::AdminOutcome> r = engine_->Import(
      ActorOf(ctx, who), req->keyring(), req->algorithm(), req->secret(), req->state());
  if (!r.ok()) return ToGrpc(r.status());
  ToKeyInfo(r->keyring->Find(r->key_id)->metadata(), resp->mutable_key());
  resp->set_revision(r->keyring->revision());
  if (strength.weak) {
    resp->set_warning(strength.warning);
    if (engine::AuditLog* audit = engine_->options().audit_log; audit != nullptr) {
      engine::AuditEvent e;
      e.time = absl::Now();
      e.caller = who;
      e.operation = "import_warning";
      e.keyring = req->keyring();
      e.key_id = r->key_id;
      e.revision = r->keyring->revision();
      e.outcome = "ok";
      e.warning = strength.warning;
      audit->Record(e);
    }
  }
  return grpc::Status::OK;
}

grpc::Status KeyAdminService::CreateKeyring(grpc::ServerContext* ctx,
                                            const v1::CreateKeyringRequest* req,
                                            v1::KeyringInfo* resp) {
  if (req->name().empty()) return Required("name");
  std::string who;
  if (grpc::Status s = Admit(ctx, req->name(), "CreateKeyring", &who, "name"); !s.ok()) return s;
  return Reply(
      engine_->CreateKeyring(ActorOf(ctx, who), req->name(), req->policy(), req->algorithm()),
      resp);
}

grpc::Status KeyAdminService::ListKeyrings(grpc::ServerContext* ctx, const v1::ListKeyringsRequest*,
                                           v1::ListKeyringsResponse* resp) {
  // Lists the keyrings the caller administers (all of them without access rules).
  Caller caller;
  if (auth_ != nullptr && ctx != nullptr) caller = auth_->Identify(*ctx);
  for (const auto& kr : engine_->ListKeyrings()) {
    if (auth_ != nullptr && auth_->enabled()) {
      grpc::Status s = auth_->Check(caller, v1::AuthConfig::ADMIN, kr->name(), "");
      if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) return s;
      if (!s.ok()) continue;
    }
    v1::ListKeyringsResponse::Entry* e = resp->add_keyrings();
    e->set_name(kr->name());
    e->set_revision(kr->revision());
    e->set_primary_key_id(kr->primary().id());
    e->set_key_count(static_cast<int32_t>(kr->keys().size()));
  }
  return grpc::Status::OK;
}

grpc::Status KeyAdminService::GetKeyring(grpc::ServerContext* ctx, const v1::GetKeyringRequest* req,
                                         v1::KeyringInfo* resp) {
  if (req->keyring().empty()) return Required("keyring");
  std::string who;
  if (grpc::Status s = Admit(ctx, req->keyring(), "GetKeyring", &who); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<const keyring::Keyring>> kr = engine_->Get(req->keyring());
  if (!kr.ok()) return ToGrpc(kr.status());
  ToKeyringInfo(**kr, resp);
  return grpc::Status::OK;
}

grpc::Status KeyAdminService::SetPolicy(grpc::ServerContext* ctx, const v1::SetPolicyRequest* req,
                                        v1::KeyringInfo* resp) {
  if (req->keyring().empty()) return Required("keyring");
  std::string who;
  if (grpc::Status s = Admit(ctx, req->keyring(), "SetPolicy", &who); !s.ok()) return s;
  return Reply(engine_->SetPolicy(ActorOf(ctx, who), req->keyring(), req->policy()), resp);
}

grpc::Status KeyAdminService::GetKeyUsage(grpc::ServerContext* ctx,
                                          const v1::GetKeyUsageRequest* req,
                                          v1::GetKeyUsageResponse* resp) {
  if (req->keyring().empty()) return Required("keyring");
  std::string who;
  if (grpc::Status s = Admit(ctx, req->keyring(), "GetKeyUsage", &who); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<const keyring::Keyring>> kr = engine_->Get(req->keyring());
  if (!kr.ok()) return ToGrpc(kr.status());
  if (usage_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "key usage is not counted by this server");
  }
  const absl::Time now = absl::Now();
  resp->set_keyring((*kr)->name());
  resp->set_revision((*kr)->revision());
  resp->mutable_counting_since()->set_seconds(absl::ToUnixSeconds(usage_->counting_since()));
  for (const auto& k : (*kr)->keys()) {
    const metrics::KeyUsage u = usage_->Usage((*kr)->name(), k->id(), now);
    v1::KeyUsage* out = resp->add_keys();
    out->set_key_id(k->id());
    out->set_state(k->state());
    out->set_verified_last_hour(u.verified_last_hour);
    out->set_verified_last_day(u.verified_last_day);
    out->set_rejected_disabled_last_day(u.rejected_disabled_last_day);
    out->set_signed_last_day(u.signed_last_day);
    if (u.last_verified != absl::InfinitePast()) {
      out->mutable_last_verified_at()->set_seconds(absl::ToUnixSeconds(u.last_verified));
    }
  }
  return grpc::Status::OK;
}

}  // namespace sessiontoken::service

namespace sessiontoken::service {

grpc::Status KeyAdminService::GetServerStatus(grpc::ServerContext* ctx,
                                              const v1::GetServerStatusRequest*,
                                              v1::ServerStatus* resp) {
  // Operators only: ADMIN on at least one keyring (anyone without access rules).
  if (auth_ != nullptr && auth_->enabled()) {
    const Caller caller = ctx != nullptr ? auth_->Identify(*ctx) : Caller();
    grpc::Status last = grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                     "GetServerStatus needs the ADMIN role on a keyring");
    bool admitted = false;
    for (const auto& kr : engine_->ListKeyrings()) {
      grpc::Status s = auth_->Check(caller, v1::AuthConfig::ADMIN, kr->name(), "");
      if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) return s;
      if (s.ok()) {
        admitted = true;
        break;
      }
    }
    if (!admitted) return last;
  }
  resp->set_ready(engine_->ready());
  if (replica_ == nullptr) {
    resp->set_store("file");
    return grpc::Status::OK;
  }
  const engine::ReplicaStatus st = replica_->Status();
  resp->set_store("etcd");
  resp->set_replica_id(st.replica_id);
  resp->set_lease_live(st.lease_live);
  resp->set_watch_connected(st.watch_connected);
  resp->set_loaded_revision(st.loaded_revision);
  if (st.staleness != absl::InfiniteDuration()) {
    resp->mutable_staleness()->set_seconds(absl::ToInt64Seconds(st.staleness));
    resp->mutable_staleness()->set_nanos(
        static_cast<int32_t>(absl::ToInt64Nanoseconds(st.staleness % absl::Seconds(1))));
  }
  resp->set_full_loads(st.full_loads);
  resp->set_watch_restarts(st.watch_restarts);
  // The announced replicas: best effort (etcd may be down; the rest still answers).
  if (absl::StatusOr<store::PresenceSet> p = engine_->replicated_store()->ListPresence(); p.ok()) {
    for (const store::PresenceEntry& e : p->replicas) {
      v1::ServerStatus::Replica* r = resp->add_replicas();
      r->set_replica_id(e.replica_id);
      r->set_loaded_revision(e.loaded_revision);
    }
  }
  return grpc::Status::OK;
}

}  // namespace sessiontoken::service

namespace sessiontoken::service {

grpc::Status KeyAdminService::AdmitAll(grpc::ServerContext* ctx, absl::string_view rpc,
                                       std::string* audit_name) const {
  Caller caller;
  if (ctx != nullptr) caller = auth_ != nullptr ? auth_->Identify(*ctx) : Caller{{}, ctx->peer()};
  *audit_name = caller.audit_name().empty() ? "local" : caller.audit_name();
  if (auth_ == nullptr) return grpc::Status::OK;
  return auth_->Check(caller, v1::AuthConfig::ADMIN, "*", rpc);
}

grpc::Status KeyAdminService::RewrapKeyrings(grpc::ServerContext* ctx,
                                             const v1::RewrapKeyringsRequest*,
                                             v1::RewrapKeyringsResponse* resp) {
  std::string who;
  if (grpc::Status s = AdmitAll(ctx, "RewrapKeyrings", &who); !s.ok()) return s;
  absl::StatusOr<engine::RewrapReport> r = engine_->RewrapKeyrings(ActorOf(ctx, who));
  if (!r.ok()) return ToGrpc(r.status());
  resp->set_kek_fingerprint(r->kek_fingerprint);
  for (const std::string& fp : r->previous_fingerprints) resp->add_previous_kek_fingerprints(fp);
  resp->set_keyrings(r->keyrings);
  resp->set_rewrapped(r->rewrapped);
  resp->set_revocation_records(r->revocation_records);
  resp->set_revocation_records_rewrapped(r->revocation_records_rewrapped);
  resp->set_remaining_count(static_cast<int32_t>(r->remaining.size()));
  for (const std::string& line : r->remaining) resp->add_remaining(line);
  return grpc::Status::OK;
}

grpc::Status KeyAdminService::ExportBackup(grpc::ServerContext* ctx, const v1::ExportBackupRequest*,
                                           v1::ExportBackupResponse* resp) {
  std::string who;
  if (grpc::Status s = AdmitAll(ctx, "ExportBackup", &who); !s.ok()) return s;
  absl::StatusOr<engine::BackupExport> b = engine_->ExportBackup(ActorOf(ctx, who));
  if (!b.ok()) return ToGrpc(b.status());
  resp->set_backup(std::move(b->file));
  resp->set_keyrings(b->keyrings);
  resp->set_revocation_records(b->revocation_records);
  for (const std::string& fp : b->kek_fingerprints) resp->add_kek_fingerprints(fp);
  resp->set_sha256(b->sha256_hex);
  resp->mutable_created_at()->set_seconds(absl::ToUnixSeconds(b->created_at));
  return grpc::Status::OK;
}

}  // namespace sessiontoken::service
