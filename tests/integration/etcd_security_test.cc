// The etcd store's TLS and user/password options against a real etcd that requires them:
// mutual TLS with the test CA, refusals without a client certificate or with the wrong CA,
// password authentication, a wrong password, and a token that expired being renewed.
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/etcd_store.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/status_matchers.h"

namespace sessiontoken::store {
namespace {

using ::sessiontoken::testing::EtcdCluster;
using ::sessiontoken::testing::EtcdClusterOptions;
using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

EtcdOptions Base(const EtcdCluster& etcd) {
  EtcdOptions o;
  o.endpoints = etcd.endpoints();
  o.request_timeout = absl::Seconds(2);
  o.attempt_timeout = absl::Seconds(1);
  return o;
}

TEST(EtcdSecurityTest, MutualTls) {
  EtcdClusterOptions co;
  co.tls = true;
  auto etcd = EtcdCluster::Start(co);
  ASSERT_THAT(etcd, IsOk());
  const auto& pki = (*etcd)->tls();

  EtcdOptions good = Base(**etcd);
  good.ca_file = pki.ca_file;
  good.cert_file = pki.client_cert;
  good.key_file = pki.client_key;
  auto store = EtcdStore::New(std::move(good));
  ASSERT_THAT(store, IsOk());
  auto v = (*store)->Put("shop", "over tls", 0);
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ((*store)->Get("shop")->data, "over tls");

  EtcdOptions no_client_cert = Base(**etcd);
  no_client_cert.ca_file = pki.ca_file;
  EXPECT_THAT((*EtcdStore::New(std::move(no_client_cert)))->Get("shop"), Not(IsOk()));

  EtcdOptions wrong_ca = Base(**etcd);
  wrong_ca.ca_file = pki.other_ca_file;
  wrong_ca.cert_file = pki.client_cert;
  wrong_ca.key_file = pki.client_key;
  EXPECT_THAT((*EtcdStore::New(std::move(wrong_ca)))->Get("shop"),
              StatusIs(absl::StatusCode::kUnavailable));

  EXPECT_THAT((*EtcdStore::New(Base(**etcd)))->Get("shop"), Not(IsOk()));  // plaintext
}

TEST(EtcdSecurityTest, UserPasswordAndTokenRenewal) {
  EtcdClusterOptions co;
  co.extra_args = {"--auth-token=simple", "--auth-token-ttl=1"};
  auto etcd = EtcdCluster::Start(co);
  ASSERT_THAT(etcd, IsOk());
  ASSERT_THAT((*etcd)->EnableAuth("s3cret-pw"), IsOk());

  EtcdOptions good = Base(**etcd);
  good.username = "root";
  good.password = crypto::SecretBytes::CopyFrom("s3cret-pw");
  auto store = EtcdStore::New(std::move(good));
  ASSERT_THAT(store, IsOk());
  auto v = (*store)->Put("shop", "authenticated", 0);
  ASSERT_THAT(v, IsOk());
  absl::SleepFor(absl::Milliseconds(2500));  // the simple token expires unused after 1 s
  EXPECT_THAT((*store)->Put("shop", "after renewal", *v), IsOk());
  EXPECT_EQ((*store)->client().authentications(), 2);  // the expired token was renewed
  EXPECT_EQ((*store)->Get("shop")->data, "after renewal");

  EtcdOptions wrong = Base(**etcd);
  wrong.username = "root";
  wrong.password = crypto::SecretBytes::CopyFrom("wrong");
  auto denied = (*EtcdStore::New(std::move(wrong)))->Get("shop");
  EXPECT_THAT(denied, StatusIs(absl::StatusCode::kInvalidArgument, "authentication as root"));
  EXPECT_THAT(denied.status().message(), Not(HasSubstr("wrong")));  // no password echoed

  EXPECT_THAT((*EtcdStore::New(Base(**etcd)))->Get("shop"), Not(IsOk()));  // anonymous
}

}  // namespace
}  // namespace sessiontoken::store
