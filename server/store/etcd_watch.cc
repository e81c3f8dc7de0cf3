#include "server/store/etcd_watch.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace sessiontoken::store {
namespace {

constexpr int kSilentIntervals = 3;  // a stream silent this many intervals is dead
constexpr absl::Duration kReconnectBackoff = absl::Milliseconds(100);

}  // namespace

std::unique_ptr<EtcdWatch> EtcdWatch::Start(std::shared_ptr<EtcdClient> client, EtcdLayout layout,
                                            int64_t start_revision, WatchListener* listener,
                                            absl::Duration progress_interval) {
  std::unique_ptr<EtcdWatch> w(new EtcdWatch(std::move(client), std::move(layout), start_revision,
                                             listener, progress_interval));
  w->reader_ = std::thread([p = w.get()] { p->Run(); });
  w->monitor_ = std::thread([p = w.get()] { p->Monitor(); });
  return w;
}

EtcdWatch::~EtcdWatch() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    if (ctx_ != nullptr) ctx_->TryCancel();
  }
  reader_.join();
  monitor_.join();
}

bool EtcdWatch::Stopping() {
  absl::MutexLock lock(&mu_);
  return stop_;
}

void EtcdWatch::Run() {
  size_t endpoint = client_->preferred_endpoint();
  for (;;) {
    absl::Status error;
    End end = RunStream(endpoint, &error);
    if (end != End::kBroken || Stopping()) return;
    if (connected_) {
      connected_ = false;
      listener_->OnConnection(absl::UnavailableError(
          absl::StrCat("etcd watch lost (", error.message(), "); retrying ",
                       client_->endpoint_list(), " from revision ", next_revision_)));
    }
    endpoint = (endpoint + 1) % client_->endpoint_count();
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stop_), kReconnectBackoff);
    if (stop_) return;
  }
}

EtcdWatch::End EtcdWatch::RunStream(size_t endpoint, absl::Status* error) {
  absl::StatusOr<std::unique_ptr<grpc::ClientContext>> ctx = client_->NewStreamContext(endpoint);
  if (!ctx.ok()) {
    *error = ctx.status();
    return End::kBroken;
  }
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return End::kStopped;
    ctx_ = ctx->get();  // from here on, Stop and the monitor can cancel the stream
    last_response_ = absl::Now();
  }
  std::unique_ptr<Stream> stream = client_->WatchStub(endpoint).Watch(ctx->get());
  etcdserverpb::WatchRequest create;
  auto* c = create.mutable_create_request();
  c->set_key(layout_.keyrings_prefix());
  c->set_range_end(EtcdLayout::RangeEnd(layout_.keyrings_prefix()));
  c->set_start_revision(next_revision_);
  End end = End::kBroken;
  if (stream->Write(create)) {
    {
      absl::MutexLock lock(&mu_);
      stream_ = stream.get();  // the monitor may now write progress requests
    }
    etcdserverpb::WatchResponse resp;
    while (stream->Read(&resp)) {
      {
        absl::MutexLock lock(&mu_);
        last_response_ = absl::Now();
      }
      if (!Handle(resp, &end, error)) break;
    }
  }
  {
    absl::MutexLock lock(&mu_);
    ctx_ = nullptr;
    stream_ = nullptr;
    if (stop_) end = End::kStopped;
  }
  (*ctx)->TryCancel();
  grpc::Status s = stream->Finish();
  if (end == End::kBroken && error->ok()) {
    *error = absl::UnavailableError(absl::StrCat(client_->endpoint(endpoint), ": ",
                                                 s.ok() ? "stream closed" : s.error_message()));
  }
  if (end == End::kBroken) client_->set_preferred_endpoint(endpoint + 1);
  return end;
}

bool EtcdWatch::Handle(const etcdserverpb::WatchResponse& resp, End* end, absl::Status* error) {
  if (resp.compact_revision() > 0) {
    *end = End::kResync;
    listener_->OnResyncNeeded(resp.compact_revision());
    return false;
  }
  if (resp.canceled()) {
    *error =
        absl::UnavailableError(absl::StrCat("watch cancelled by etcd: ", resp.cancel_reason()));
    return false;
  }
  if (resp.created()) {
    if (!connected_) {
      connected_ = true;
      listener_->OnConnection(absl::OkStatus());
    }
    return true;
  }
  if (resp.events_size() == 0) {
    // A progress answer. etcd 3.4.23 does not order requested progress with the events
    // (etcd-io/etcd#15220, fixed in later 3.4 releases), so it proves the stream alive but
    // is no safe resume point: next_revision_ moves only with delivered events.
    listener_->OnProgress(std::max(resp.header().revision(), next_revision_ - 1));
    return true;
  }
  Deliver(resp);
  return true;
}

// Hands the events over one revision at a time (a response may span several revisions).
void EtcdWatch::Deliver(const etcdserverpb::WatchResponse& resp) {
  std::vector<KeyringEvent> batch;
  int64_t batch_revision = 0;
  auto flush = [&] {
    if (batch.empty()) return;
    listener_->OnEvents(batch_revision, std::move(batch));
    next_revision_ = batch_revision + 1;
    batch.clear();
  };
  for (const mvccpb::Event& e : resp.events()) {
    if (e.kv().mod_revision() != batch_revision) flush();
    batch_revision = e.kv().mod_revision();
    KeyringEvent ev;
    if (e.type() == mvccpb::Event::DELETE) {
      absl::StatusOr<std::string> name = layout_.KeyringName(e.kv().key());
      ev.name = name.ok() ? *name : e.kv().key();
      ev.status = name.status();
      ev.deleted = true;
    } else {
      KeyringRecord r = layout_.ToRecord(e.kv());
      ev.name = std::move(r.name);
      ev.status = std::move(r.status);
      ev.blob = std::move(r.blob);
    }
    batch.push_back(std::move(ev));
  }
  flush();
}

// Asks for progress every interval; cancels a stream that stayed silent too long so the
// reader fails over to another endpoint.
void EtcdWatch::Monitor() {
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), progress_interval_)) {
    if (ctx_ == nullptr) continue;
    if (absl::Now() - last_response_ > kSilentIntervals * progress_interval_) {
      ctx_->TryCancel();
      continue;
    }
    if (stream_ == nullptr) continue;
    etcdserverpb::WatchRequest progress;
    progress.mutable_progress_request();
    stream_->Write(progress);
  }
}

}  // namespace sessiontoken::store
