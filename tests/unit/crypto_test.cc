#include <cstring>

#include "gtest/gtest.h"
#include "server/crypto/aead.h"
#include "server/crypto/hmac.h"
#include "server/crypto/random.h"
#include "server/crypto/secret_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/test_util.h"

namespace sessiontoken::crypto {
namespace {

using ::sessiontoken::testing::IsOk;
using ::testing::Not;

using ::sessiontoken::testing::Hex;
using ::sessiontoken::testing::ToHex;

std::string Mac(HashFunction h, absl::string_view key, absl::string_view data) {
  auto mac = Hmac::New(h, key);
  EXPECT_THAT(mac, IsOk());
  uint8_t out[32];
  (*mac)->Compute({data}, out);
  return ToHex(absl::string_view(reinterpret_cast<char*>(out), (*mac)->tag_size()));
}

struct HmacCase {
  const char* name;
  std::string key;
  std::string data;
  const char* sha256;
};

// RFC 4231, test cases 1, 2, 3, 6, 7 (HMAC-SHA-256).
TEST(HmacTest, Rfc4231KnownAnswers) {
  const HmacCase cases[] = {
      {"tc1", std::string(20, '\x0b'), "Hi There",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"tc2", "Jefe", "what do ya want for nothing?",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {"tc3", std::string(20, '\xaa'), std::string(50, '\xdd'),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {"tc6", std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {"tc7", std::string(131, '\xaa'),
       "This is a test using a larger than block-size key and a larger than block-size data. "
       "The key needs to be hashed before being used by the HMAC algorithm.",
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (const HmacCase& c : cases) {
    EXPECT_EQ(Mac(HashFunction::kSha256, c.key, c.data), c.sha256) << c.name;
  }
}

// RFC 2202 test cases 1 and 2 (HMAC-SHA-1, used by the Flask-compatible format).
TEST(HmacTest, Rfc2202Sha1KnownAnswers) {
  EXPECT_EQ(Mac(HashFunction::kSha1, std::string(20, '\x0b'), "Hi There"),
            "b617318655057264e28bc0b6fb378c8ef146be00");
  EXPECT_EQ(Mac(HashFunction::kSha1, "Jefe", "what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
}

TEST(HmacTest, PartsAreConcatenatedAndVerifyIsExact) {
  auto mac = Hmac::New(HashFunction::kSha256, "Jefe");
  ASSERT_THAT(mac, IsOk());
  uint8_t out[32];
  (*mac)->Compute({"what do ya ", "", "want for nothing?"}, out);
  std::string tag(reinterpret_cast<char*>(out), 32);
  EXPECT_EQ(ToHex(tag), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_TRUE((*mac)->Verify({"what do ya want for nothing?"}, tag));
  std::string bad = tag;
  bad[31] ^= 1;
  EXPECT_FALSE((*mac)->Verify({"what do ya want for nothing?"}, bad));
  EXPECT_FALSE((*mac)->Verify({"what do ya want for nothing?"}, tag.substr(0, 31)));
  EXPECT_FALSE((*mac)->Verify({"what do ya want for nothing!"}, tag));
}

TEST(HmacTest, RejectsEmptyKey) { EXPECT_THAT(Hmac::New(HashFunction::kSha256, ""), Not(IsOk())); }

TEST(ConstantTimeEqualsTest, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
}

TEST(Sha256Test, KnownAnswer) {
  uint8_t out[32];
  Sha256("abc", out);
  EXPECT_EQ(ToHex(absl::string_view(reinterpret_cast<char*>(out), 32)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// The AES-256 cases (13, 14, 16) of McGrew & Viega's GCM specification, as used by NIST.
TEST(Aes256GcmTest, NistKnownAnswers) {
  struct Case {
    const char* key;
    const char* nonce;
    const char* pt;
    const char* aad;
    const char* ct_tag;
  } cases[] = {
      {"0000000000000000000000000000000000000000000000000000000000000000",
       "000000000000000000000000", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
      {"0000000000000000000000000000000000000000000000000000000000000000",
       "000000000000000000000000", "00000000000000000000000000000000", "",
       "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"},
      {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
       "cafebabefacedbaddecaf888",
       "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"
       "49a6b525b16aedf5aa0de657ba637b39",
       "feedfacedeadbeeffeedfacedeadbeefabaddad2",
       "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
       "56828838c5f61e6393ba7a0abcc9f66276fc6ece0f4e1768cddf8853bb2d551b"},
  };
  for (const Case& c : cases) {
    auto gcm = Aes256Gcm::New(Hex(c.key));
    ASSERT_THAT(gcm, IsOk());
    auto sealed = (*gcm)->Seal(Hex(c.nonce), Hex(c.pt), Hex(c.aad));
    ASSERT_THAT(sealed, IsOk());
    EXPECT_EQ(ToHex(*sealed), c.ct_tag);
    auto opened = (*gcm)->Open(Hex(c.nonce), Hex(c.ct_tag), Hex(c.aad));
    ASSERT_THAT(opened, IsOk());
    EXPECT_EQ(ToHex(opened->view()), c.pt);
  }
}

TEST(Aes256GcmTest, EncryptDecryptRoundTripAndTamperDetection) {
  SecretBytes key = RandomSecret(32);
  auto gcm = Aes256Gcm::New(key.view());
  ASSERT_THAT(gcm, IsOk());
  auto a = (*gcm)->Encrypt("secret keyring", "aad");
  auto b = (*gcm)->Encrypt("secret keyring", "aad");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);  // fresh nonce each time
  EXPECT_EQ(a->size(), 12 + 14 + 16u);
  auto plain = (*gcm)->Decrypt(*a, "aad");
  ASSERT_THAT(plain, IsOk());
  EXPECT_EQ(plain->view(), "secret keyring");
  EXPECT_THAT((*gcm)->Decrypt(*a, "other aad"), Not(IsOk()));
  for (size_t i = 0; i < a->size(); ++i) {
    std::string t = *a;
    t[i] ^= 0x01;
    EXPECT_THAT((*gcm)->Decrypt(t, "aad"), Not(IsOk())) << "byte " << i;
  }
  EXPECT_THAT((*gcm)->Decrypt(a->substr(0, 20), "aad"), Not(IsOk()));
  auto other = Aes256Gcm::New(RandomSecret(32).view());
  EXPECT_THAT((*other)->Decrypt(*a, "aad"), Not(IsOk()));
  EXPECT_THAT(Aes256Gcm::New("short"), Not(IsOk()));
}

TEST(SecretBytesTest, MoveTransfersAndClearEmpties) {
  SecretBytes a = SecretBytes::CopyFrom("key material");
  const uint8_t* p = a.data();
  SecretBytes b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is defined empty
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.view(), "key material");
  b.Clear();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.data(), nullptr);
}

TEST(SecretBytesTest, SecureWipeZeroesMemory) {
  char buf[16];
  std::memset(buf, 'k', sizeof(buf));
  SecureWipe(buf, sizeof(buf));
  for (char c : buf) EXPECT_EQ(c, 0);
}

TEST(RandomTest, ProducesDistinctValues) {
  SecretBytes a = RandomSecret(32), b = RandomSecret(32);
  EXPECT_NE(a.view(), b.view());
  EXPECT_NE(a.view(), std::string(32, '\0'));
}

}  // namespace
}  // namespace sessiontoken::crypto
