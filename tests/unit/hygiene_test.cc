// Secret hygiene in process: key buffers are wiped before their memory is freed, and every
// MAC check goes through the constant-time comparison.
#include <cstdlib>
#include <cstring>
#include <new>

#include "gtest/gtest.h"
#include "server/crypto/hmac.h"
#include "server/crypto/secret_bytes.h"
#include "server/keyring/keyring.h"
#include "server/keyring/lifecycle.h"
#include "server/keyring/policy.h"
#include "server/keyring/stored_form.h"
#include "server/token/base64url.h"
#include "server/token/flask.h"
#include "tests/testing/signer.h"

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

}  // namespace

void* operator new[](size_t n) {
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete[](void* p) noexcept {
  Inspect(p);
  std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
  Inspect(p);
  std::free(p);
}

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
  const std::string bad_native = "st1." + token::Base64UrlEncode(body);
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

}  // namespace
}  // namespace sessiontoken
