#include "server/metrics/process.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace sessiontoken::metrics {
namespace {

prometheus::MetricFamily One(const char* name, const char* help, prometheus::MetricType type,
                             double value) {
  prometheus::MetricFamily f{name, help, type, {}};
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(m);
  return f;
}

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double BootTime() {
  for (absl::string_view line : absl::StrSplit(ReadFile("/proc/stat"), '\n')) {
    double v = 0;
    if (absl::ConsumePrefix(&line, "btime ") && absl::SimpleAtod(line, &v)) return v;
  }
  return 0;
}

int OpenFds() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n - 3;  // ".", ".." and the directory's own descriptor
}

}  // namespace

std::vector<prometheus::MetricFamily> ProcessFamilies() {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  const std::string stat = ReadFile("/proc/self/stat");
  // Fields after the command name (which may contain spaces) start at field 3.
  const size_t close = stat.rfind(')');
  if (close != std::string::npos && close + 2 < stat.size()) {
    std::vector<absl::string_view> f =
        absl::StrSplit(absl::string_view(stat).substr(close + 2), ' ', absl::SkipEmpty());
    auto field = [&](int n) {  // n: the 1-based field number of proc(5)
      double v = 0;
      return n - 3 < static_cast<int>(f.size()) && absl::SimpleAtod(f[n - 3], &v) ? v : -1;
    };
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    if (field(14) >= 0 && field(15) >= 0) {
      out.push_back(One("process_cpu_seconds_total", "Total user and system CPU time spent.",
                        MetricType::Counter, (field(14) + field(15)) / tick));
    }
    if (field(20) >= 0) {
      out.push_back(One("process_threads", "Number of OS threads.", MetricType::Gauge, field(20)));
    }
    if (const double boot = BootTime(); boot > 0 && field(22) >= 0) {
      out.push_back(One("process_start_time_seconds", "Start time since the Unix epoch.",
                        MetricType::Gauge, boot + field(22) / tick));
    }
    if (field(23) >= 0) {
      out.push_back(One("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                        MetricType::Gauge, field(23)));
    }
    if (field(24) >= 0) {
      out.push_back(One("process_resident_memory_bytes", "Resident memory size in bytes.",
                        MetricType::Gauge, field(24) * page));
    }
  }
  if (const int fds = OpenFds(); fds >= 0) {
    out.push_back(
        One("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, fds));
  }
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    out.push_back(One("process_max_fds", "Maximum number of open file descriptors.",
                      MetricType::Gauge, static_cast<double>(lim.rlim_cur)));
  }
  return out;
}

}  // namespace sessiontoken::metrics
