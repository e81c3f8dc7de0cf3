// Secret hygiene in process: key buffers are wiped before their memory is freed, and every
// MAC check goes through the constant-time comparison.
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/crypto/aead.h"
#include "server/crypto/hmac.h"
#include "server/crypto/random.h"
#include "server/crypto/secret_bytes.h"
#include "server/keyring/keyring.h"
#include "server/keyring/lifecycle.h"
#include "server/keyring/policy.h"
#include "server/keyring/stored_form.h"
#include "server/service/admin_service.h"
#include "server/service/tokens_service.h"
#include "server/store/sealer.h"
#include "server/token/base64url.h"
#include "server/token/flask.h"
#include "server/token/native.h"
#include "tests/testing/memory_store.h"
#include "tests/testing/signer.h"
#include "tests/unit/test_util.h"

namespace {

// Array allocations are routed through malloc/free here so that the test can look at a
// watched block just before it is freed.
const void* g_watch = nullptr;
size_t g_watch_size = 0;
int g_watch_freed = 0;
bool g_watch_was_zero = false;

void Inspect(void* p) {
  if (p != nullptr && p == g_watch) {
    ++g_watch_freed;
    const auto* b = static_cast<const unsigned char*>(p);
    g_watch_was_zero = true;
    for (size_t i = 0; i < g_watch_size; ++i) g_watch_was_zero &= b[i] == 0;
    g_watch = nullptr;
  }
}

// While recording, the content of every block freed through operator delete / delete[] is
// copied here, so that a test can search freed memory for a secret afterwards.
char g_freed[16 << 20];
size_t g_freed_len = 0;
bool g_recording = false;

void Record(void* p) {
  if (!g_recording || p == nullptr) return;
  const size_t n = std::min(malloc_usable_size(p), sizeof(g_freed) - g_freed_len);
  std::memcpy(g_freed + g_freed_len, p, n);
  g_freed_len += n;
}

}  // namespace

// These replace the global allocation functions with malloc/free; GCC, seeing a global
// operator new's pointer reach free(), would otherwise warn.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new[](size_t n) {
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete[](void* p) noexcept {
  Inspect(p);
  Record(p);
  std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
  Inspect(p);
  Record(p);
  std::free(p);
}
void* operator new(size_t n) {
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
// The nothrow forms too (std::stable_sort's temporary buffer uses them), so that every
// plain allocation and release pairs malloc with free.
void* operator new(size_t n, const std::nothrow_t&) noexcept { return std::malloc(n ? n : 1); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return std::malloc(n ? n : 1); }
void operator delete(void* p, const std::nothrow_t&) noexcept {
  Record(p);
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  Inspect(p);
  Record(p);
  std::free(p);
}
void operator delete(void* p) noexcept {
  Record(p);
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  Record(p);
  std::free(p);
}
#pragma GCC diagnostic pop

// Every call to crypto::ConstantTimeEquals made through the linker (all of them: it has a
// translation unit of its own) lands here first: the link uses
// --wrap=<its mangled name> (tests/unit/CMakeLists.txt). A changed signature or Abseil
// namespace breaks the link loudly rather than the count silently.
#define ST_CTE_SYMBOL "_ZN12sessiontoken6crypto18ConstantTimeEqualsEN4absl7debian311string_viewES3_"
bool RealConstantTimeEquals(absl::string_view a, absl::string_view b) asm("__real_" ST_CTE_SYMBOL);
bool CountedConstantTimeEquals(absl::string_view a,
                               absl::string_view b) asm("__wrap_" ST_CTE_SYMBOL);
thread_local uint64_t g_constant_time_equals_calls = 0;
bool CountedConstantTimeEquals(absl::string_view a, absl::string_view b) {
  ++g_constant_time_equals_calls;
  return RealConstantTimeEquals(a, b);
}

namespace sessiontoken {
namespace {

// Records freed memory from construction to FreedBytes().
class FreedMemory {
 public:
  FreedMemory() {
    g_freed_len = 0;
    g_recording = true;
  }
  ~FreedMemory() { g_recording = false; }
  // Stops recording; true when `needle` occurs in any block freed meanwhile.
  bool Contains(absl::string_view needle) {
    g_recording = false;
    EXPECT_LT(g_freed_len, sizeof(g_freed)) << "recording buffer full: enlarge it";
    return std::search(g_freed, g_freed + g_freed_len, needle.begin(), needle.end()) !=
           g_freed + g_freed_len;
  }
  size_t bytes() const { return g_freed_len; }
};

void Watch(const void* p, size_t n) {
  g_watch = p;
  g_watch_size = n;
  g_watch_freed = 0;
  g_watch_was_zero = false;
}

TEST(HygieneTest, SecretBytesIsWipedBeforeItIsFreed) {
  {
    crypto::SecretBytes s = crypto::SecretBytes::CopyFrom("super secret key material!");
    Watch(s.data(), s.size());
  }
  EXPECT_EQ(g_watch_freed, 1);
  EXPECT_TRUE(g_watch_was_zero);
  // Move-assignment wipes the overwritten buffer too.
  crypto::SecretBytes a = crypto::SecretBytes::CopyFrom("first secret");
  Watch(a.data(), a.size());
  a = crypto::SecretBytes::CopyFrom("second secret");
  EXPECT_EQ(g_watch_freed, 1);
  EXPECT_TRUE(g_watch_was_zero);
}

TEST(HygieneTest, KeyMaterialIsWipedWhenTheLastSnapshotDropsIt) {
  auto ring = *keyring::Keyring::Create("ring", absl::FromUnixSeconds(1800000000));
  const keyring::Key& k = ring->primary();
  Watch(k.material().data(), k.material().size());
  uint32_t id = 0;
  auto next = *Rotate(*ring, absl::FromUnixSeconds(1800000001), true, &id);
  const uint32_t old_id = ring->primary().id();
  ring.reset();
  EXPECT_EQ(g_watch_freed, 0);  // still used by `next` (ACTIVE key)
  next = *Disable(*next, old_id, absl::FromUnixSeconds(1800000002));
  next = *Destroy(*next, old_id, absl::FromUnixSeconds(1800000003));
  EXPECT_EQ(g_watch_freed, 1);  // destroyed: the last holder let go
  EXPECT_TRUE(g_watch_was_zero);
}

TEST(HygieneTest, EveryMacCheckIsConstantTime) {
  const absl::Time now = absl::FromUnixSeconds(1800000000);
  auto ring = *keyring::Keyring::Create("ring", now);
  uint32_t flask_id = 0;
  ring = *Import(*ring, v1::HMAC_SHA1_FLASK, "flask-secret", v1::ACTIVE, now, &flask_id);
  const std::string native = Signer(ring)->Sign("p", "aud", now, absl::Hours(1))->token;
  auto signer = *token::DeriveFlaskSigner("flask-secret", token::kFlaskDefaultSalt);
  const std::string flask = token::SignFlask(*signer, "{\"a\":1}", 1800000000);
  // A native token with one MAC bit flipped (re-encoded, so it still parses).
  std::string body;
  ASSERT_TRUE(token::Base64UrlDecodeStrict(absl::string_view(native).substr(4), &body));
  body.back() ^= 1;
  const std::string bad_native = native.substr(0, 4) + token::Base64UrlEncode(body);
  // A Flask cookie whose payload section changed (still well-formed, signature now wrong).
  std::string bad_flask = flask;
  bad_flask[1] = bad_flask[1] == 'A' ? 'B' : 'A';
  struct Case {
    std::string token, audience;
  } cases[] = {{native, "aud"},
               {bad_native, "aud"},
               {native, "other"},
               {flask, "cookie-session"},
               {bad_flask, "cookie-session"}};
  for (const Case& c : cases) {
    const uint64_t before = g_constant_time_equals_calls;
    format::VerifyResult r = Signer(ring)->Verify(c.token, c.audience, now);
    EXPECT_NE(r.status, format::VerifyStatus::kMalformed) << c.token;  // reached the MAC
    EXPECT_GE(g_constant_time_equals_calls - before, 1u)
        << c.token << " -> " << format::VerifyStatusName(r.status);
  }
}

TEST(HygieneTest, AesGcmKeyScheduleIsWipedWhenDropped) {
  const crypto::SecretBytes key = crypto::RandomSecret(crypto::Aes256Gcm::kKeySize);
  FreedMemory freed;
  {
    auto aead = crypto::Aes256Gcm::New(key.view());
    ASSERT_TRUE(aead.ok());
    ASSERT_TRUE((*aead)->Encrypt("plaintext", "aad").ok());
  }
  EXPECT_GT(freed.bytes(), 0u);  // the context was freed while recording
  // The AES-256 key schedule starts with the key itself (AES-NI and the generic code).
  EXPECT_FALSE(freed.Contains(key.view().substr(0, 16)));
}

TEST(HygieneTest, DevKekLeavesNoCopyInFreedMemory) {
  const std::string path = testing::MakeTempDir() + "/dev-kek";
  bool created = false;
  FreedMemory freed;
  auto kek = store::LoadOrCreateDevKek(path, &created);
  ASSERT_TRUE(kek.ok()) << kek.status();
  ASSERT_TRUE(created);
  auto again = store::LoadOrCreateDevKek(path, &created);  // exists: read back
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->view(), kek->view());
  const std::string hex = absl::BytesToHexString(kek->view());
  EXPECT_FALSE(freed.Contains(hex.substr(0, 16)));
  EXPECT_FALSE(freed.Contains(hex.substr(48, 16)));
  EXPECT_FALSE(freed.Contains(kek->view().substr(0, 16)));
  ::unlink(path.c_str());
}

TEST(HygieneTest, KekFileReadableByGroupOrOthersIsRefused) {
  const std::string path = testing::MakeTempDir() + "/kek";
  { std::ofstream(path) << std::string(64, 'a') << "\n"; }
  for (mode_t mode : {0644, 0640, 0604, 0660, 0602, 0610}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto kek = store::LoadKekFile(path);
    EXPECT_EQ(kek.status().code(), absl::StatusCode::kFailedPrecondition) << std::oct << mode;
    EXPECT_THAT(std::string(kek.status().message()), ::testing::HasSubstr("chmod 600 " + path));
  }
  for (mode_t mode : {0600, 0400}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    EXPECT_TRUE(store::LoadKekFile(path).ok()) << std::oct << mode;
  }
  ::unlink(path.c_str());
}

TEST(HygieneTest, KekEnvVarIsWipedAndUnsetWhetherOrNotItIsUsed) {
  const std::string hex(64, 'b');
  for (const char* value : {"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                            "not a kek at all, but secret anyway"}) {
    ASSERT_EQ(::setenv("SESSIONTOKEN_TEST_KEK", value, 1), 0);
    char* in_env = std::getenv("SESSIONTOKEN_TEST_KEK");
    const size_t n = std::strlen(in_env);
    auto kek = store::TakeKekFromEnv("SESSIONTOKEN_TEST_KEK");
    EXPECT_EQ(kek.ok(), std::string(value) == hex) << kek.status();
    EXPECT_EQ(std::getenv("SESSIONTOKEN_TEST_KEK"), nullptr);
    // setenv's copy is never freed by glibc: its bytes can still be inspected.
    EXPECT_EQ(std::string(in_env, n), std::string(n, '\0'));
  }
  EXPECT_EQ(*store::TakeKekFromEnv("SESSIONTOKEN_TEST_KEK_UNSET"), std::nullopt);
}

// Issue 17 point 7: the ImportKey request's copy of the secret is wiped when the call ends,
// whatever its outcome.
TEST(HygieneTest, ImportKeyRequestSecretIsWipedAfterUse) {
  auto engine = *engine::Engine::New(std::make_unique<store::MemoryStore>(),
                                     *store::Sealer::New(crypto::RandomSecret(32)),
                                     &keyring::Clock::Real(), {});
  service::KeyAdminService admin(engine.get());
  struct Case {
    std::string keyring;
    v1::Algorithm algorithm;
    v1::KeyState state;
    grpc::StatusCode want;
  } cases[] = {
      {"default", v1::HMAC_SHA1_FLASK, v1::ACTIVE, grpc::StatusCode::OK},
      {"default", v1::HMAC_SHA256, v1::PRIMARY, grpc::StatusCode::OK},
      {"nope", v1::HMAC_SHA1_FLASK, v1::ACTIVE, grpc::StatusCode::NOT_FOUND},
      {"BAD NAME", v1::HMAC_SHA1_FLASK, v1::ACTIVE, grpc::StatusCode::INVALID_ARGUMENT},
      {"default", v1::HMAC_SHA256, v1::DESTROYED, grpc::StatusCode::INVALID_ARGUMENT},
      {"default", v1::ALGORITHM_UNSPECIFIED, v1::ACTIVE, grpc::StatusCode::INVALID_ARGUMENT},
  };
  for (const Case& c : cases) {
    const crypto::SecretBytes secret = crypto::RandomSecret(32);
    v1::ImportKeyRequest req;
    req.set_keyring(c.keyring);
    req.set_algorithm(c.algorithm);
    req.set_state(c.state);
    req.set_secret(std::string(secret.view()));
    v1::ImportKeyResponse resp;
    FreedMemory freed;  // nothing the call frees may hold the secret either
    EXPECT_EQ(admin.ImportKey(nullptr, &req, &resp).error_code(), c.want) << c.keyring;
    EXPECT_FALSE(freed.Contains(secret.view().substr(0, 16))) << c.keyring;
    EXPECT_FALSE(freed.Contains(secret.view().substr(16, 16))) << c.keyring;
    EXPECT_EQ(req.secret(), std::string(32, '\0')) << c.keyring;
  }
}

// A sealed payload appears in clear nowhere but in a VALID Verify's answer: not in the token
// (text or decoded body), not in any failed Verify, not in any error message of Sign or
// Verify; and the sealing key is not the MAC key (the key material does not open it).
TEST(HygieneTest, SealedPayloadsNeverAppearInClear) {
  auto engine = *engine::Engine::New(std::make_unique<store::MemoryStore>(),
                                     *store::Sealer::New(crypto::RandomSecret(32)),
                                     &keyring::Clock::Real(), {});
  v1::KeyringPolicy sealed;
  sealed.set_seal_payloads(true);
  ASSERT_TRUE(engine->SetPolicy("t", "default", sealed).ok());
  service::SessionTokensService tokens(engine.get());
  const std::string marker = "card=4111-1111-1111-1111;cvv=737";
  v1::SignRequest sreq;
  sreq.set_keyring("default");
  sreq.set_payload(marker);
  sreq.set_audience("web");
  sreq.set_subject("u1");
  sreq.mutable_ttl()->set_seconds(60);
  v1::SignResponse signed_token;
  ASSERT_TRUE(tokens.DoSign(sreq, &signed_token).ok());
  const std::string& tok = signed_token.token();
  std::string body;
  ASSERT_TRUE(token::Base64UrlDecodeStrict(absl::string_view(tok).substr(4), &body));
  for (size_t i = 0; i + 8 <= marker.size(); i += 4) {
    EXPECT_EQ(body.find(marker.substr(i, 8)), std::string::npos) << i;
    EXPECT_EQ(tok.find(token::Base64UrlEncode(marker.substr(i, 6))), std::string::npos) << i;
  }
  // The key material itself (the MAC key) does not open the payload.
  auto kr = *engine->Get("default");
  auto parsed = token::ParseNative(tok);
  ASSERT_TRUE(parsed.has_value() && parsed->sealed());
  auto mac_key_aead = crypto::Aes256Gcm::New(kr->primary().material());
  ASSERT_TRUE(mac_key_aead.ok());
  absl::string_view section = parsed->payload();
  EXPECT_FALSE((*mac_key_aead)
                   ->Open(section.substr(0, 12), section.substr(12),
                          absl::StrCat("st2.", std::string("\0\0\0\3", 4), "web", parsed->header()))
                   .ok());
  // Failed verifications (wrong audience, flipped bits, a bad request) and failed signs.
  std::vector<v1::VerifyRequest> bad(4);
  for (auto& r : bad) r.set_keyring("default");
  bad[0].set_token(tok);
  bad[0].set_audience("api");
  std::string flipped = body;
  flipped[flipped.size() - 40] ^= 1;  // in the GCM tag
  bad[1].set_token("st2." + token::Base64UrlEncode(flipped));
  bad[1].set_audience("web");
  bad[2].set_token(tok);
  bad[2].set_audience(std::string(300, 'a'));  // INVALID_ARGUMENT
  bad[3].set_token(tok + "=");
  bad[3].set_audience("web");
  for (const auto& r : bad) {
    v1::VerifyResponse resp;
    grpc::Status s = tokens.DoVerify(r, &resp);
    EXPECT_EQ(s.error_message().find("4111"), std::string::npos);
    EXPECT_NE(resp.result(), v1::VerifyResponse::VALID);
    EXPECT_EQ(resp.payload(), "");
    EXPECT_EQ(resp.DebugString().find("4111"), std::string::npos);
  }
  sreq.set_subject(std::string(200, 's'));
  grpc::Status s = tokens.DoSign(sreq, &signed_token);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.error_message().find("4111"), std::string::npos) << s.error_message();
  // The one place it appears: a VALID answer.
  v1::VerifyRequest good = bad[0];
  good.set_audience("web");
  v1::VerifyResponse ok;
  ASSERT_TRUE(tokens.DoVerify(good, &ok).ok());
  EXPECT_EQ(ok.payload(), marker);
}

}  // namespace
}  // namespace sessiontoken
