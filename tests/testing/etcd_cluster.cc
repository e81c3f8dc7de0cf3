#include "tests/testing/etcd_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace sessiontoken::testing {
namespace {

// The first port of the range the kernel hands out for outgoing connections and bind(0).
int EphemeralStart() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  return in >> low ? low : 32768;
}

// Whether a TCP port on 127.0.0.1 can be bound right now (0: the kernel picks; *port says).
bool Bindable(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(*port));
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (ok) *port = ntohs(addr.sin_port);
  return ok;
}

// A port nothing listens on, for etcd to listen on. Taken below the ephemeral range: a port
// from bind(0) is closed before etcd binds it, and in that window any outgoing connection on
// the machine (other tests' clients) may take it as its local port, so etcd would exit with
// "address already in use" (scripts/localproc.py does the same for the Python tests).
int FreePort() {
  thread_local std::mt19937 random(std::random_device{}());
  const int low = EphemeralStart();
  for (int attempt = 0; attempt < 100 && low > 11000; ++attempt) {
    int port = std::uniform_int_distribution<int>(10000, low - 1)(random);
    if (Bindable(&port)) return port;
  }
  int port = 0;
  return Bindable(&port) ? port : 0;
}

std::string EtcdBinary() {
  const char* env = std::getenv("ETCD_BIN");
  return env != nullptr && *env != '\0' ? env : "/usr/bin/etcd";
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The end of a log file, for error messages (the cluster's directory goes with the cluster).
std::string LogTail(const std::string& path) {
  const std::string all = ReadAll(path);
  return all.size() <= 600 ? all : all.substr(all.size() - 600);
}

std::shared_ptr<grpc::ChannelCredentials> Credentials(const EtcdTlsFiles& tls) {
  if (tls.ca_file.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ReadAll(tls.ca_file);
  o.pem_cert_chain = ReadAll(tls.client_cert);
  o.pem_private_key = ReadAll(tls.client_key);
  return grpc::SslCredentials(o);
}

int RunShell(const std::string& script) {
  int status = std::system(script.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Maintenance.Status of one member: its id and the leader's id.
absl::StatusOr<etcdserverpb::StatusResponse> MemberStatus(const std::string& endpoint,
                                                          const EtcdTlsFiles& tls) {
  auto channel = grpc::CreateChannel(endpoint, Credentials(tls));
  auto stub = etcdserverpb::Maintenance::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
  etcdserverpb::StatusResponse resp;
  grpc::Status s = stub->Status(&ctx, etcdserverpb::StatusRequest(), &resp);
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return resp;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(int members,
                                                                absl::Duration timeout) {
  EtcdClusterOptions o;
  o.members = members;
  o.timeout = timeout;
  return Start(o);
}

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(const EtcdClusterOptions& options) {
  const int members = options.members;
  if (::access(EtcdBinary().c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(EtcdBinary(), " not found: install etcd-server (scripts/install-deps.sh)"));
  }
  std::unique_ptr<EtcdCluster> c(new EtcdCluster());
  c->options_ = options;
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/sessiontoken-etcd-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("mkdtemp failed");
  c->dir_ = tmpl;
  if (options.tls) {
    if (absl::Status s = c->MakePki(); !s.ok()) return s;
  }
  absl::flat_hash_set<int> taken;  // FreePort's ports are free, not reserved: no repeats
  auto port = [&taken] {
    int p = FreePort();
    while (p != 0 && !taken.insert(p).second) p = FreePort();
    return p;
  };
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = absl::StrCat("m", i);
    m.client_port = port();
    m.peer_port = port();
    c->members_.push_back(m);
  }
  for (int i = 0; i < members; ++i) {
    if (absl::Status s = c->Spawn(i); !s.ok()) return s;
  }
  if (absl::Status s = c->WaitHealthy(options.timeout); !s.ok()) return s;
  return c;
}

absl::Status EtcdCluster::MakePki() {
  const std::string d = dir_ + "/pki";
  tls_ = {d + "/ca.pem",     d + "/server.pem", d + "/server.key",
          d + "/client.pem", d + "/client.key", d + "/other-ca.pem"};
  const std::string script = absl::StrCat(
      "set -e; mkdir -p ", d, "; cd ", d, "\n",
      "gen() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key"
      " -out $1.csr -subj /CN=$1 2>/dev/null; }\n",
      "for ca in ca other-ca; do openssl req -x509 -newkey ec -pkeyopt "
      "ec_paramgen_curve:P-256 -nodes -keyout $ca.key -out $ca.pem -days 2 -subj /CN=$ca "
      "2>/dev/null; done\n",
      "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > "
      "server.ext\n",
      "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n",
      "for n in server client; do gen $n; openssl x509 -req -in $n.csr -CA ca.pem -CAkey "
      "ca.key -CAcreateserial -out $n.pem -days 2 -extfile $n.ext 2>/dev/null; done\n");
  if (RunShell(script) != 0) return absl::InternalError("could not create the test PKI");
  return absl::OkStatus();
}

absl::Status EtcdCluster::EnableAuth(const std::string& password) {
  const std::string etcdctl = absl::StrCat(
      "ETCDCTL_API=3 etcdctl --endpoints=", absl::StrJoin(endpoints(), ","),
      options_.tls ? absl::StrCat(" --cacert=", tls_.ca_file, " --cert=", tls_.client_cert,
                                  " --key=", tls_.client_key)
                   : "");
  const std::string script = absl::StrCat(etcdctl, " user add root:", password, " >/dev/null && ",
                                          etcdctl, " auth enable >/dev/null");
  if (RunShell(script) != 0) return absl::InternalError("etcdctl could not enable auth");
  return absl::OkStatus();
}

EtcdCluster::~EtcdCluster() {
  for (int i = 0; i < size(); ++i) Kill(i);
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::string EtcdCluster::endpoint(int i) const {
  return absl::StrCat("127.0.0.1:", members_[i].client_port);
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(endpoint(i));
  return out;
}

std::string EtcdCluster::InitialCluster() const {
  std::vector<std::string> parts;
  for (const Member& m : members_) {
    parts.push_back(absl::StrCat(m.name, "=http://127.0.0.1:", m.peer_port));
  }
  return absl::StrJoin(parts, ",");
}

absl::Status EtcdCluster::Spawn(int i) {
  Member& m = members_[i];
  const std::string client = absl::StrCat(Scheme(), "://127.0.0.1:", m.client_port);
  const std::string peer = absl::StrCat("http://127.0.0.1:", m.peer_port);
  std::vector<std::string> args = {EtcdBinary(),
                                   "--name",
                                   m.name,
                                   "--data-dir",
                                   absl::StrCat(dir_, "/", m.name),
                                   "--listen-client-urls",
                                   client,
                                   "--advertise-client-urls",
                                   client,
                                   "--listen-peer-urls",
                                   peer,
                                   "--initial-advertise-peer-urls",
                                   peer,
                                   "--initial-cluster",
                                   InitialCluster(),
                                   "--initial-cluster-state",
                                   "new",
                                   "--initial-cluster-token",
                                   dir_,
                                   "--logger",
                                   "zap",
                                   "--log-level",
                                   "warn"};
  if (options_.tls) {
    for (const std::string& a :
         {"--cert-file=" + tls_.server_cert, "--key-file=" + tls_.server_key,
          "--trusted-ca-file=" + tls_.ca_file, std::string("--client-cert-auth")}) {
      args.push_back(a);
    }
  }
  for (const std::string& a : options_.extra_args) args.push_back(a);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log = absl::StrCat(dir_, "/", m.name, ".log");
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {  // only async-signal-safe calls until exec
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  m.pid = pid;
  return absl::OkStatus();
}

void EtcdCluster::Kill(int i) {
  Member& m = members_[i];
  if (m.pid <= 0) return;
  ::kill(m.pid, SIGCONT);
  ::kill(m.pid, SIGKILL);
  ::waitpid(m.pid, nullptr, 0);
  m.pid = -1;
}

void EtcdCluster::Pause(int i) { ::kill(members_[i].pid, SIGSTOP); }
void EtcdCluster::Resume(int i) { ::kill(members_[i].pid, SIGCONT); }

absl::Status EtcdCluster::Restart(int i, absl::Duration timeout) {
  if (members_[i].pid > 0) return absl::FailedPreconditionError("member is running");
  if (absl::Status s = Spawn(i); !s.ok()) return s;
  return WaitHealthy(timeout);
}

absl::Status EtcdCluster::WaitHealthy(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last = "not started";
  while (absl::Now() < deadline) {
    bool all = true;
    for (int i = 0; i < size() && all; ++i) {
      if (members_[i].pid <= 0) continue;
      if (::waitpid(members_[i].pid, nullptr, WNOHANG) == members_[i].pid) {
        members_[i].pid = -1;
        const std::string log = absl::StrCat(dir_, "/", members_[i].name, ".log");
        return absl::InternalError(absl::StrCat("etcd member ", members_[i].name, " exited; ", log,
                                                " ends: ", LogTail(log)));
      }
      absl::StatusOr<etcdserverpb::StatusResponse> s = MemberStatus(endpoint(i), tls_);
      all = s.ok() && s->leader() != 0;
      if (!all) last = s.ok() ? "no leader yet" : std::string(s.status().message());
    }
    if (all) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("etcd not healthy within ", absl::FormatDuration(timeout), ": ", last));
}

absl::StatusOr<int> EtcdCluster::Leader() {
  for (int i = 0; i < size(); ++i) {
    if (members_[i].pid <= 0) continue;
    absl::StatusOr<etcdserverpb::StatusResponse> s = MemberStatus(endpoint(i), tls_);
    if (!s.ok() || s->leader() == 0) continue;
    for (int j = 0; j < size(); ++j) {
      if (members_[j].pid <= 0) continue;
      absl::StatusOr<etcdserverpb::StatusResponse> t = MemberStatus(endpoint(j), tls_);
      if (t.ok() && t->header().member_id() == s->leader()) return j;
    }
  }
  return absl::UnavailableError("no leader found");
}

}  // namespace sessiontoken::testing
