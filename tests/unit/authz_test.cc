// Authentication and per-keyring authorization through a real in-process gRPC server:
// every RPC x identity x keyring combination. Allowed calls pass the access check (they may
// still fail for other reasons, never with UNAUTHENTICATED or PERMISSION_DENIED); the rest
// get PERMISSION_DENIED (or UNAUTHENTICATED without valid credentials).
#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "server/crypto/hmac.h"
#include "server/crypto/random.h"
#include "server/service/admin_service.h"
#include "server/service/auth.h"
#include "server/service/tokens_service.h"
#include "tests/testing/memory_store.h"

namespace sessiontoken::service {
namespace {

using R = v1::AuthConfig;

std::string Sha256Hex(absl::string_view s) {
  uint8_t d[32];
  crypto::Sha256(s, d);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(d), 32));
}

class CapturingAudit : public engine::AuditLog {
 public:
  void Record(const engine::AuditEvent& e) override { events.push_back(e); }
  std::vector<engine::AuditEvent> events;
};

struct Identity {
  std::string name;
  std::string token;  // "" = no credentials
  // role -> keyrings granted
  std::map<Role, std::set<std::string>> grants;
};

class AuthzTest : public ::testing::Test {
 protected:
  void SetUp() override {
    identities_ = {
        {"signer-shop", "tok-signer-shop", {{R::SIGN, {"shop"}}}},
        {"verifier-shop", "tok-verifier-shop", {{R::VERIFY, {"shop"}}}},
        {"frontend-shop", "tok-frontend-shop", {{R::SIGN, {"shop"}}, {R::VERIFY, {"shop"}}}},
        {"admin-shop", "tok-admin-shop", {{R::ADMIN, {"shop"}}}},
        {"admin-all", "tok-admin-all", {{R::ADMIN, {"*"}}}},
        {"signer-blog", "tok-signer-blog", {{R::SIGN, {"blog"}}}},
        {"nobody", "tok-nobody", {}},
        {"anonymous", "", {}},
        {"bad-token", "tok-not-configured", {}},
    };
    v1::AuthConfig cfg;
    for (const Identity& id : identities_) {
      if (id.name == "anonymous" || id.name == "bad-token") continue;
      auto* t = cfg.add_api_tokens();
      t->set_identity(id.name);
      t->set_sha256(Sha256Hex(id.token));
      for (const auto& [role, keyrings] : id.grants) {
        auto* rule = cfg.add_rules();
        rule->set_identity(id.name);
        rule->add_roles(role);
        for (const auto& k : keyrings) rule->add_keyrings(k);
      }
    }
    auto policy = AccessPolicy::New(cfg, false);
    ASSERT_TRUE(policy.ok()) << policy.status();
    engine::EngineOptions opts;
    opts.audit_log = &audit_;
    engine_ = *engine::Engine::New(std::make_unique<store::MemoryStore>(),
                                   *store::Sealer::New(crypto::RandomSecret(32)),
                                   &keyring::Clock::Real(), opts);
    for (const char* k : {"shop", "blog"}) ASSERT_TRUE(engine_->CreateKeyring("t", k, {}).ok());
    auth_ = std::make_unique<Authorizer>(*std::move(policy), &audit_);
    tokens_ = std::make_unique<SessionTokensService>(engine_.get(), 100, auth_.get());
    admin_ = std::make_unique<KeyAdminService>(engine_.get(), auth_.get());
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(tokens_.get());
    b.RegisterService(admin_.get());
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    auto ch = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                  grpc::InsecureChannelCredentials());
    tstub_ = v1::SessionTokens::NewStub(ch);
    astub_ = v1::KeyAdmin::NewStub(ch);
  }
  void TearDown() override { server_->Shutdown(); }

  std::unique_ptr<grpc::ClientContext> Ctx(const Identity& id) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!id.token.empty()) ctx->AddMetadata("authorization", "Bearer " + id.token);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ctx;
  }

  std::vector<Identity> identities_;
  CapturingAudit audit_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<Authorizer> auth_;
  std::unique_ptr<SessionTokensService> tokens_;
  std::unique_ptr<KeyAdminService> admin_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::SessionTokens::Stub> tstub_;
  std::unique_ptr<v1::KeyAdmin::Stub> astub_;
};

TEST_F(AuthzTest, EveryRpcTimesEveryIdentityTimesKeyring) {
  using Call = std::function<grpc::StatusCode(grpc::ClientContext*, const std::string& keyring)>;
  auto code = [](const grpc::Status& s) { return s.error_code(); };
  // Batch calls answer per item: the item's code is what authorization decided.
  auto item_code = [](const grpc::Status& s, int item) {
    return s.ok() ? static_cast<grpc::StatusCode>(item) : s.error_code();
  };
  struct Rpc {
    std::string name;
    Role role;
    Call call;
  };
  std::vector<Rpc> rpcs = {
      {"Sign", R::SIGN,
       [&](auto* c, auto& k) {
         v1::SignRequest r;
         r.set_keyring(k);
         r.mutable_ttl()->set_seconds(60);
         v1::SignResponse o;
         return code(tstub_->Sign(c, r, &o));
       }},
      {"BatchSign", R::SIGN,
       [&](auto* c, auto& k) {
         v1::BatchSignRequest r;
         auto* i = r.add_items();
         i->set_keyring(k);
         i->mutable_ttl()->set_seconds(60);
         v1::BatchSignResponse o;
         auto s = tstub_->BatchSign(c, r, &o);
         return item_code(s, o.items_size() ? o.items(0).code() : -1);
       }},
      {"Verify", R::VERIFY,
       [&](auto* c, auto& k) {
         v1::VerifyRequest r;
         r.set_keyring(k);
         r.set_token("x");
         v1::VerifyResponse o;
         return code(tstub_->Verify(c, r, &o));
       }},
      {"BatchVerify", R::VERIFY,
       [&](auto* c, auto& k) {
         v1::BatchVerifyRequest r;
         auto* i = r.add_items();
         i->set_keyring(k);
         i->set_token("x");
         v1::BatchVerifyResponse o;
         auto s = tstub_->BatchVerify(c, r, &o);
         return item_code(s, o.items_size() ? o.items(0).code() : -1);
       }},
      {"Rotate", R::ADMIN,
       [&](auto* c, auto& k) {
         v1::RotateRequest r;
         r.set_keyring(k);
         v1::RotateResponse o;
         return code(astub_->Rotate(c, r, &o));
       }},
      {"ListKeys", R::ADMIN,
       [&](auto* c, auto& k) {
         v1::ListKeysRequest r;
         r.set_keyring(k);
         v1::ListKeysResponse o;
         return code(astub_->ListKeys(c, r, &o));
       }},
      {"GetKeyring", R::ADMIN,
       [&](auto* c, auto& k) {
         v1::GetKeyringRequest r;
         r.set_keyring(k);
         v1::KeyringInfo o;
         return code(astub_->GetKeyring(c, r, &o));
       }},
      {"PromoteKey", R::ADMIN,
       [&](auto* c, auto& k) {
         v1::KeyRequest r;
         r.set_keyring(k);
         r.set_key_id(12345);
         v1::KeyringInfo o;
         return code(astub_->PromoteKey(c, r, &o));
       }},
      {"DisableKey", R::ADMIN,
       [&](auto* c, auto& k) {
         v1::KeyRequest r;
         r.set_keyring(k);
         r.set_key_id(12345);
         v1::KeyringInfo o;
         return code(astub_->DisableKey(c, r, &o));
       }},
      {"EnableKey", R::ADMIN,
       [&](auto* c, auto& k) {
         v1::KeyRequest r;
         r.set_keyring(k);
         r.set_key_id(12345);
         v1::KeyringInfo o;
         return code(astub_->EnableKey(c, r, &o));
       }},
      {"DestroyKey", R::ADMIN,
       [&](auto* c, auto& k) {
         v1::KeyRequest r;
         r.set_keyring(k);
         r.set_key_id(12345);
         v1::KeyringInfo o;
         return code(astub_->DestroyKey(c, r, &o));
       }},
      {"ImportKey", R::ADMIN,
       [&](auto* c, auto& k) {
         v1::ImportKeyRequest r;
         r.set_keyring(k);
         r.set_algorithm(v1::HMAC_SHA1_FLASK);
         r.set_secret("legacy");
         v1::ImportKeyResponse o;
         return code(astub_->ImportKey(c, r, &o));
       }},
      {"SetPolicy", R::ADMIN,
       [&](auto* c, auto& k) {
         v1::SetPolicyRequest r;
         r.set_keyring(k);
         v1::KeyringInfo o;
         return code(astub_->SetPolicy(c, r, &o));
       }},
      {"CreateKeyring", R::ADMIN,
       [&](auto* c, auto& k) {
         v1::CreateKeyringRequest r;
         r.set_name(k);
         v1::KeyringInfo o;
         return code(astub_->CreateKeyring(c, r, &o));
       }},
  };
  int combinations = 0, allowed = 0, denied = 0;
  for (const Identity& id : identities_) {
    for (const Rpc& rpc : rpcs) {
      for (const std::string keyring : {"shop", "blog"}) {
        SCOPED_TRACE(id.name + " " + rpc.name + " " + keyring);
        ++combinations;
        auto ctx = Ctx(id);
        grpc::StatusCode got = rpc.call(ctx.get(), keyring);
        auto g = id.grants.find(rpc.role);
        const bool granted =
            g != id.grants.end() && (g->second.contains(keyring) || g->second.contains("*"));
        if (id.token.empty() || id.name == "bad-token") {
          EXPECT_EQ(got, grpc::StatusCode::UNAUTHENTICATED);
          ++denied;
        } else if (granted) {
          EXPECT_NE(got, grpc::StatusCode::PERMISSION_DENIED);
          EXPECT_NE(got, grpc::StatusCode::UNAUTHENTICATED);
          ++allowed;
        } else {
          EXPECT_EQ(got, grpc::StatusCode::PERMISSION_DENIED);
          ++denied;
        }
      }
    }
  }
  EXPECT_EQ(combinations, 9 * 14 * 2);
  EXPECT_GT(allowed, 20);
  EXPECT_GT(denied, 150);
  // Denials are audited with the identity; no event for anonymous callers' keyrings.
  int denial_events = 0;
  for (const auto& e : audit_.events) {
    if (absl::StartsWith(e.operation, "denied:")) {
      ++denial_events;
      EXPECT_TRUE(absl::StartsWith(e.outcome, "PERMISSION_DENIED")) << e.outcome;
      EXPECT_FALSE(e.caller.empty());
    }
  }
  EXPECT_GT(denial_events, 100);
  std::printf("authorization matrix: %d combinations (%d allowed, %d denied), %d denials audited\n",
              combinations, allowed, denied, denial_events);
}

// Revoke is allowed with SIGN (the frontend that issues the sessions) or ADMIN on the
// keyring; VERIFY alone is not enough. A refusal of both is audited once, as Revoke.
TEST_F(AuthzTest, RevokeNeedsSignOrAdmin) {
  int allowed = 0;
  for (const Identity& id : identities_) {
    for (const std::string keyring : {"shop", "blog"}) {
      SCOPED_TRACE(id.name + " " + keyring);
      const size_t events_before = audit_.events.size();
      auto ctx = Ctx(id);
      v1::RevokeRequest r;
      r.set_keyring(keyring);
      r.set_subject("user-1");
      v1::RevokeResponse o;
      const grpc::Status s = tstub_->Revoke(ctx.get(), r, &o);
      auto has = [&](Role role) {
        auto g = id.grants.find(role);
        return g != id.grants.end() && (g->second.contains(keyring) || g->second.contains("*"));
      };
      if (id.token.empty() || id.name == "bad-token") {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
      } else if (has(R::SIGN) || has(R::ADMIN)) {
        EXPECT_TRUE(s.ok()) << s.error_message();
        EXPECT_GT(o.drop_after().seconds(), o.revoked_at().seconds());
        ASSERT_EQ(audit_.events.size(), events_before + 1);
        EXPECT_EQ(audit_.events.back().operation, "revoke_subject");
        EXPECT_TRUE(absl::StrContains(audit_.events.back().caller, id.name));
        ++allowed;
      } else {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
        EXPECT_TRUE(absl::StrContains(s.error_message(), "needs SIGN or ADMIN"));
        ASSERT_EQ(audit_.events.size(), events_before + 1);
        EXPECT_EQ(audit_.events.back().operation, "denied:Revoke");
      }
    }
  }
  EXPECT_EQ(allowed,
            6);  // signer-shop, frontend-shop, admin-shop (shop); admin-all x2; signer-blog
}

TEST_F(AuthzTest, ListKeyringsShowsOnlyAdministeredKeyrings) {
  auto list = [&](const std::string& who) {
    for (const Identity& id : identities_) {
      if (id.name != who) continue;
      auto ctx = Ctx(id);
      v1::ListKeyringsResponse o;
      grpc::Status s = astub_->ListKeyrings(ctx.get(), {}, &o);
      std::vector<std::string> names;
      for (const auto& e : o.keyrings()) names.push_back(e.name());
      return std::make_pair(s.error_code(), names);
    }
    return std::make_pair(grpc::StatusCode::INTERNAL, std::vector<std::string>{});
  };
  EXPECT_EQ(list("admin-all").second, (std::vector<std::string>{"blog", "default", "shop"}));
  EXPECT_EQ(list("admin-shop").second, (std::vector<std::string>{"shop"}));
  EXPECT_TRUE(list("frontend-shop").second.empty());
  EXPECT_EQ(list("anonymous").first, grpc::StatusCode::UNAUTHENTICATED);
}

// Issue 14: rewrap and backup act on every keyring: ADMIN on "*" only (an admin of one
// keyring is refused, audited), and each is audited when it runs.
TEST_F(AuthzTest, RewrapAndBackupNeedAdminOnEveryKeyring) {
  for (const Identity& id : identities_) {
    v1::RewrapKeyringsResponse rw;
    v1::ExportBackupResponse bk;
    const grpc::StatusCode rewrap = astub_->RewrapKeyrings(Ctx(id).get(), {}, &rw).error_code();
    const grpc::StatusCode backup = astub_->ExportBackup(Ctx(id).get(), {}, &bk).error_code();
    const grpc::StatusCode want = id.name == "admin-all" ? grpc::StatusCode::OK
                                  : id.name == "anonymous" || id.name == "bad-token"
                                      ? grpc::StatusCode::UNAUTHENTICATED
                                      : grpc::StatusCode::PERMISSION_DENIED;
    EXPECT_EQ(rewrap, want) << id.name;
    EXPECT_EQ(backup, want) << id.name;
    if (want == grpc::StatusCode::OK) {
      EXPECT_EQ(rw.keyrings(), 3);  // default, shop, blog
      EXPECT_EQ(rw.remaining_count(), 0);
      EXPECT_EQ(bk.keyrings(), 3);
      EXPECT_FALSE(bk.backup().empty());
    }
  }
  int denied = 0, ran = 0;
  for (const engine::AuditEvent& e : audit_.events) {
    if (e.operation == "rewrap_keyrings" || e.operation == "export_backup") {
      ++ran;
      EXPECT_EQ(e.caller, "token:admin-all");
    }
    if (e.outcome.find("PERMISSION_DENIED") != std::string::npos &&
        (e.operation.find("Rewrap") != std::string::npos ||
         e.operation.find("ExportBackup") != std::string::npos)) {
      ++denied;
    }
  }
  EXPECT_EQ(ran, 2);
  EXPECT_GE(denied, 2);
}

TEST_F(AuthzTest, FrontendCanOnlySignAndVerifyItsOwnKeyring) {
  const Identity& frontend = identities_[2];
  auto ctx = Ctx(frontend);
  v1::SignRequest s;
  s.set_keyring("shop");
  s.set_payload("user=1");
  s.mutable_ttl()->set_seconds(60);
  v1::SignResponse signed_token;
  ASSERT_TRUE(tstub_->Sign(ctx.get(), s, &signed_token).ok());
  auto ctx2 = Ctx(frontend);
  v1::VerifyRequest v;
  v.set_keyring("shop");
  v.set_token(signed_token.token());
  v1::VerifyResponse out;
  ASSERT_TRUE(tstub_->Verify(ctx2.get(), v, &out).ok());
  EXPECT_EQ(out.result(), v1::VerifyResponse::VALID);
  // Cannot sign for another app, cannot rotate its own keys.
  auto ctx3 = Ctx(frontend);
  s.set_keyring("blog");
  EXPECT_EQ(tstub_->Sign(ctx3.get(), s, &signed_token).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  auto ctx4 = Ctx(frontend);
  v1::RotateRequest r;
  r.set_keyring("shop");
  v1::RotateResponse rr;
  EXPECT_EQ(astub_->Rotate(ctx4.get(), r, &rr).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // The admin's rotation is audited under its identity.
  auto ctx5 = Ctx(identities_[3]);
  ASSERT_TRUE(astub_->Rotate(ctx5.get(), r, &rr).ok());
  EXPECT_EQ(audit_.events.back().caller, "token:admin-shop");
  EXPECT_EQ(audit_.events.back().operation, "rotate");
}

// Issue 17 point 2: a denial used to write the raw keyring name to the audit log twice, each
// non-ASCII byte escaped to 6 bytes (1 MiB of name -> ~12 MiB of log, per batch item). The
// name is now checked before authorization, and every audit field is capped.
TEST_F(AuthzTest, HugeKeyringNameAddsAtMostAFewHundredBytesToTheAuditLog) {
  const Identity& signer = identities_[0];  // SIGN on "shop" only: everything here is denied
  std::string huge;  // 1 MiB of valid UTF-8 whose every byte the audit log escapes to 6
  for (int i = 0; i < (1 << 19); ++i) huge += "\xc3\xa9";
  auto audit_bytes = [&] {
    size_t n = 0;
    for (const auto& e : audit_.events) n += engine::AuditEventToJson(e).size() + 1;
    return n;
  };
  using Call = std::function<grpc::Status(grpc::ClientContext*)>;
  const std::vector<std::pair<std::string, Call>> calls = {
      {"Sign",
       [&](auto* c) {
         v1::SignRequest r;
         r.set_keyring(huge);
         r.mutable_ttl()->set_seconds(60);
         v1::SignResponse o;
         return tstub_->Sign(c, r, &o);
       }},
      {"Verify",
       [&](auto* c) {
         v1::VerifyRequest r;
         r.set_keyring(huge);
         r.set_token("x");
         v1::VerifyResponse o;
         return tstub_->Verify(c, r, &o);
       }},
      {"BatchSign",
       [&](auto* c) {
         v1::BatchSignRequest r;
         for (int i = 0; i < 3; ++i) {
           auto* item = r.add_items();
           item->set_keyring(huge);
           item->mutable_ttl()->set_seconds(60);
         }
         v1::BatchSignResponse o;
         grpc::Status s = tstub_->BatchSign(c, r, &o);
         if (!s.ok()) return s;
         for (const auto& item : o.items()) {
           if (item.code() != grpc::StatusCode::INVALID_ARGUMENT) {
             return grpc::Status(static_cast<grpc::StatusCode>(item.code()), item.message());
           }
         }
         return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "every item");
       }},
      {"Rotate",
       [&](auto* c) {
         v1::RotateRequest r;
         r.set_keyring(huge);
         v1::RotateResponse o;
         return astub_->Rotate(c, r, &o);
       }},
      {"ImportKey",
       [&](auto* c) {
         v1::ImportKeyRequest r;
         r.set_keyring(huge);
         r.set_algorithm(v1::HMAC_SHA1_FLASK);
         r.set_secret("legacy");
         v1::ImportKeyResponse o;
         return astub_->ImportKey(c, r, &o);
       }},
      {"CreateKeyring",
       [&](auto* c) {
         v1::CreateKeyringRequest r;
         r.set_name(huge);
         v1::KeyringInfo o;
         return astub_->CreateKeyring(c, r, &o);
       }},
  };
  for (const auto& [name, call] : calls) {
    SCOPED_TRACE(name);
    const size_t before = audit_bytes();
    auto ctx = Ctx(signer);
    grpc::Status s = call(ctx.get());
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message().size();
    EXPECT_LE(s.error_message().size(), 200u);
    EXPECT_LE(audit_bytes() - before, 300u);
  }
  // A valid name the signer may not use is still denied and audited, in one short line.
  const size_t before = audit_bytes();
  auto ctx = Ctx(signer);
  v1::SignRequest r;
  r.set_keyring("blog");
  r.mutable_ttl()->set_seconds(60);
  v1::SignResponse o;
  EXPECT_EQ(tstub_->Sign(ctx.get(), r, &o).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_GT(audit_bytes() - before, 50u);
  EXPECT_LE(audit_bytes() - before, 300u);
}

TEST(AccessPolicyTest, ValidatesConfig) {
  v1::AuthConfig cfg;
  auto* t = cfg.add_api_tokens();
  t->set_identity("a");
  t->set_sha256("zz");
  EXPECT_FALSE(AccessPolicy::New(cfg, false).ok());
  t->set_sha256(std::string(64, 'a'));
  EXPECT_TRUE(AccessPolicy::New(cfg, false).ok());
  auto* dup = cfg.add_api_tokens();
  *dup = *t;
  EXPECT_FALSE(AccessPolicy::New(cfg, false).ok());
  cfg.mutable_api_tokens()->RemoveLast();
  auto* rule = cfg.add_rules();
  rule->set_identity("a");
  rule->add_keyrings("shop");
  EXPECT_FALSE(AccessPolicy::New(cfg, false).ok());  // no roles
  rule->add_roles(R::SIGN);
  auto p = AccessPolicy::New(cfg, false);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE((*p)->authentication_required());
  EXPECT_TRUE((*p)->Allowed("token:a", R::SIGN, "shop"));
  EXPECT_FALSE((*p)->Allowed("token:a", R::VERIFY, "shop"));
  EXPECT_FALSE((*p)->Allowed("token:a", R::SIGN, "blog"));
  EXPECT_FALSE((*p)->Allowed("token:b", R::SIGN, "shop"));
  EXPECT_EQ((*p)->IdentityOfToken(""), std::nullopt);
  // Nothing configured: open (the loopback development default).
  auto open = AccessPolicy::New({}, false);
  EXPECT_FALSE((*open)->authentication_required());
  EXPECT_TRUE((*open)->Allowed("anyone", R::ADMIN, "x"));
  // mTLS alone requires authentication, without rules.
  EXPECT_TRUE((*AccessPolicy::New({}, true))->authentication_required());
}

// Issue 17 point 8: bearer-token identities, certificate URI SANs and DNS SANs are separate
// namespaces; a rule names the kind.
TEST(AccessPolicyTest, IdentityKindsNeverMatchEachOther) {
  v1::AuthConfig cfg;
  auto* t = cfg.add_api_tokens();
  t->set_identity("shop-frontend");
  t->set_sha256(Sha256Hex("tok"));
  auto rule = [&](const std::string& id, Role role, const std::string& keyring) {
    auto* r = cfg.add_rules();
    r->set_identity(id);
    r->add_roles(role);
    r->add_keyrings(keyring);
  };
  rule("token:shop-frontend", R::SIGN, "shop");
  rule("dns:shop-host", R::VERIFY, "shop");
  rule("uri:spiffe://prod/ops", R::ADMIN, "*");
  auto p = AccessPolicy::New(cfg, true);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE((*p)->legacy_notes().empty());
  EXPECT_EQ((*p)->IdentityOfToken("tok"), "token:shop-frontend");
  EXPECT_TRUE((*p)->Allowed("token:shop-frontend", R::SIGN, "shop"));
  for (const char* other : {"dns:shop-frontend", "uri:shop-frontend", "shop-frontend"}) {
    EXPECT_FALSE((*p)->Allowed(other, R::SIGN, "shop")) << other;
  }
  EXPECT_TRUE((*p)->Allowed("dns:shop-host", R::VERIFY, "shop"));
  EXPECT_FALSE((*p)->Allowed("token:shop-host", R::VERIFY, "shop"));
  EXPECT_FALSE((*p)->Allowed("uri:shop-host", R::VERIFY, "shop"));
  EXPECT_TRUE((*p)->Allowed("uri:spiffe://prod/ops", R::ADMIN, "any"));
  EXPECT_FALSE((*p)->Allowed("dns:spiffe://prod/ops", R::ADMIN, "any"));
  EXPECT_FALSE((*p)->Allowed("token:spiffe://prod/ops", R::ADMIN, "any"));
}

TEST(AccessPolicyTest, RulesWithoutAKindAreReadOnlyWhereUnambiguous) {
  v1::AuthConfig cfg;
  auto* t = cfg.add_api_tokens();
  t->set_identity("shop-frontend");
  t->set_sha256(Sha256Hex("tok"));
  auto rule = [&](const std::string& id) {
    auto* r = cfg.add_rules();
    r->set_identity(id);
    r->add_roles(R::ADMIN);
    r->add_keyrings("shop");
  };
  rule("shop-frontend");      // an API token identity: the token only
  rule("spiffe://prod/ops");  // has a ':': a SAN URI (no DNS name has one)
  auto p = AccessPolicy::New(cfg, true);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE((*p)->Allowed("token:shop-frontend", R::ADMIN, "shop"));
  EXPECT_FALSE((*p)->Allowed("dns:shop-frontend", R::ADMIN, "shop"));  // the finding
  EXPECT_TRUE((*p)->Allowed("uri:spiffe://prod/ops", R::ADMIN, "shop"));
  ASSERT_EQ((*p)->legacy_notes().size(), 2u);
  EXPECT_TRUE(absl::StrContains((*p)->legacy_notes()[0], "read as \"token:shop-frontend\""))
      << (*p)->legacy_notes()[0];
  EXPECT_TRUE(absl::StrContains((*p)->legacy_notes()[1], "read as \"uri:spiffe://prod/ops\""))
      << (*p)->legacy_notes()[1];

  // A bare name that is no API token could be a removed token's or a DNS SAN: refused.
  rule("shop-host");
  auto refused = AccessPolicy::New(cfg, true);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "auth.rules[2].identity"));
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "\"dns:shop-host\""));
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "\"token:shop-host\""));
  cfg.mutable_rules()->RemoveLast();
  for (const char* bad : {"token:ghost", "token:", "dns:", "uri:"}) {
    rule(bad);
    EXPECT_EQ(AccessPolicy::New(cfg, true).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
    cfg.mutable_rules()->RemoveLast();
  }
}

}  // namespace
}  // namespace sessiontoken::service
