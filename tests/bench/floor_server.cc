// floor_server: a do-nothing unary gRPC service (callback API) built exactly like
// sessiontoken-server (server/main.cc): default health service and reflection enabled,
// insecure listening port, the same ServerBuilder options (max receive message size, max
// concurrent streams, with main.cc's defaults), absl mutex deadlock detection off as main.cc
// turns it off, same stdout protocol and SIGTERM handling. The load generator's QPS against
// it is the "gRPC floor" that `make bench` compares the real service with. Keep it in step
// with main.cc: any process-wide setting there changes what a gRPC call costs.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "floor.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to listen on (loopback only)");
ABSL_FLAG(int32_t, max_message_bytes, 1 << 20, "As sessiontoken-server's flag");
ABSL_FLAG(int32_t, max_concurrent_streams, 256, "As sessiontoken-server's flag");
ABSL_FLAG(bool, mutex_deadlock_detection, false,
          "Experiment: true leaves absl::Mutex deadlock detection (which gRPC's mutexes use) "
          "at the library default (on in Debian's Abseil); false turns it off, as "
          "sessiontoken-server's main.cc does");

namespace {

class FloorService final : public sessiontoken::bench::Floor::CallbackService {
  grpc::ServerUnaryReactor* Noop(grpc::CallbackServerContext* ctx,
                                 const sessiontoken::bench::NoopRequest* req,
                                 sessiontoken::bench::NoopResponse* resp) override {
    if (req->reply_size() > 0) resp->mutable_data()->assign(req->reply_size(), 'x');
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // As server/main.cc, right after flag parsing and before any gRPC object exists.
  if (!absl::GetFlag(FLAGS_mutex_deadlock_detection)) {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (listen.rfind("127.0.0.1:", 0) != 0 && listen.rfind("[::1]:", 0) != 0 &&
      listen.rfind("localhost:", 0) != 0) {
    std::fprintf(stderr, "floor_server: refusing to listen on a non-loopback address %s\n",
                 listen.c_str());
    return 2;
  }
  FloorService service;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(absl::GetFlag(FLAGS_max_message_bytes));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             absl::GetFlag(FLAGS_max_concurrent_streams));
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "floor_server: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  const std::string host = listen.substr(0, listen.rfind(':'));
  std::printf("floor_server listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Wait();
  return 0;
}
