#include "server/gateway/tls_credentials.h"

#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/service/access_policy.h"

namespace sessiontoken::gateway {

class TlsCredentials::Loaded {
 public:
  explicit Loaded(gnutls_certificate_credentials_t cred) : cred_(cred) {}
  ~Loaded() { gnutls_certificate_free_credentials(cred_); }
  Loaded(const Loaded&) = delete;
  Loaded& operator=(const Loaded&) = delete;
  gnutls_certificate_credentials_t get() const { return cred_; }

 private:
  const gnutls_certificate_credentials_t cred_;
};

namespace {

// A file's contents, wiped when dropped (the key file is a secret).
class FileBytes {
 public:
  FileBytes() = default;
  ~FileBytes() {
    if (d_.data != nullptr) {
      gnutls_memset(d_.data, 0, d_.size);
      gnutls_free(d_.data);
    }
  }
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  absl::Status Read(const std::string& path) {
    const int rc = gnutls_load_file(path.c_str(), &d_);
    if (rc < 0) return absl::FailedPreconditionError(absl::StrCat("cannot read TLS file ", path));
    return absl::OkStatus();
  }
  const gnutls_datum_t* datum() const { return &d_; }

 private:
  gnutls_datum_t d_ = {nullptr, 0};
};

struct Contents {
  FileBytes cert, key, ca;
};

absl::Status ReadAll(const TlsFiles& f, Contents* c) {
  if (absl::Status s = c->cert.Read(f.cert_file); !s.ok()) return s;
  if (absl::Status s = c->key.Read(f.key_file); !s.ok()) return s;
  if (!f.client_ca_file.empty()) return c->ca.Read(f.client_ca_file);
  return absl::OkStatus();
}

// SHA-256 over the three files' contents (each prefixed by its length): "did they change".
std::string DigestOf(const Contents& c) {
  std::string all;
  for (const FileBytes* f : {&c.cert, &c.key, &c.ca}) {
    absl::StrAppend(&all, f->datum()->size, ":");
    all.append(reinterpret_cast<const char*>(f->datum()->data), f->datum()->size);
  }
  unsigned char digest[32];
  const int rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, all.data(), all.size(), digest);
  gnutls_memset(all.data(), 0, all.size());
  if (rc < 0) return std::string();
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

absl::StatusOr<std::shared_ptr<const TlsCredentials::Loaded>> Build(const TlsFiles& f,
                                                                    const Contents& c) {
  gnutls_certificate_credentials_t cred = nullptr;
  if (gnutls_certificate_allocate_credentials(&cred) < 0) {
    return absl::ResourceExhaustedError("TLS: cannot allocate credentials");
  }
  auto loaded = std::make_shared<const TlsCredentials::Loaded>(cred);
  int rc = gnutls_certificate_set_x509_key_mem2(cred, c.cert.datum(), c.key.datum(),
                                                GNUTLS_X509_FMT_PEM, nullptr, 0);
  if (rc < 0) {
    return absl::InvalidArgumentError(absl::StrCat("TLS: ", f.cert_file, " / ", f.key_file,
                                                   ": not a PEM certificate chain and its key (",
                                                   gnutls_strerror(rc), ")"));
  }
  if (!f.client_ca_file.empty()) {
    rc = gnutls_certificate_set_x509_trust_mem(cred, c.ca.datum(), GNUTLS_X509_FMT_PEM);
    if (rc <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS: ", f.client_ca_file, ": no PEM CA certificate (",
                       rc < 0 ? gnutls_strerror(rc) : "none found", ")"));
    }
  }
  return loaded;
}

// The SAN of `type` at the first position that has one, or "".
std::string FirstSan(gnutls_x509_crt_t crt, gnutls_x509_subject_alt_name_t type) {
  std::vector<char> buf(256);
  for (unsigned int seq = 0;; ++seq) {
    size_t size = buf.size();
    int rc = gnutls_x509_crt_get_subject_alt_name(crt, seq, buf.data(), &size, nullptr);
    if (rc == GNUTLS_E_SHORT_MEMORY_BUFFER) {
      buf.resize(size + 1);
      size = buf.size();
      rc = gnutls_x509_crt_get_subject_alt_name(crt, seq, buf.data(), &size, nullptr);
    }
    if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) return std::string();
    if (rc < 0) continue;  // an entry GnuTLS cannot decode: not an identity
    if (rc == type) return std::string(buf.data(), size);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsCredentials>> TlsCredentials::Load(const TlsFiles& files,
                                                                     Logger log) {
  Contents c;
  if (absl::Status s = ReadAll(files, &c); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<const Loaded>> loaded = Build(files, c);
  if (!loaded.ok()) return loaded.status();
  return std::unique_ptr<TlsCredentials>(new TlsCredentials(
      files, log ? std::move(log) : [](absl::string_view, absl::string_view) {}, *std::move(loaded),
      DigestOf(c)));
}

void TlsCredentials::ReloadIfDue() {
  const absl::Time now = absl::Now();
  if (now - last_look_ < files_.reload_interval) return;
  last_look_ = now;
  Contents c;
  absl::Status read = ReadAll(files_, &c);
  std::string digest = read.ok() ? DigestOf(c) : std::string();
  if (read.ok() && (digest.empty() || digest == digest_)) return;
  // A half-written pair (new certificate, old key) does not load: tried again next time.
  absl::StatusOr<std::shared_ptr<const Loaded>> loaded =
      read.ok() ? Build(files_, c) : absl::StatusOr<std::shared_ptr<const Loaded>>(read);
  if (!loaded.ok()) {
    log_("WARNING", absl::StrCat("http gateway: TLS files not reloaded, still serving the last "
                                 "good ones: ",
                                 loaded.status().message()));
    return;
  }
  current_ = *std::move(loaded);
  digest_ = std::move(digest);
  log_("INFO", absl::StrCat("http gateway: TLS certificate reloaded from ", files_.cert_file));
}

std::shared_ptr<const TlsCredentials::Loaded> TlsCredentials::Attach(gnutls_session_t session) {
  std::shared_ptr<const Loaded> loaded;
  {
    absl::MutexLock lock(&mu_);
    ReloadIfDue();
    loaded = current_;
  }
  gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, loaded->get());
  if (mtls()) {
    gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
    gnutls_session_set_verify_cert(session, nullptr, 0);  // chain to the CA, no host name
  } else {
    gnutls_certificate_server_set_request(session, GNUTLS_CERT_IGNORE);
  }
  return loaded;
}

std::string TlsCredentials::PeerIdentity(gnutls_session_t session) {
  unsigned int verify_status = 0;
  if (gnutls_certificate_verify_peers2(session, &verify_status) < 0 || verify_status != 0) {
    return std::string();
  }
  unsigned int n = 0;
  const gnutls_datum_t* chain = gnutls_certificate_get_peers(session, &n);
  if (chain == nullptr || n == 0) return std::string();
  gnutls_x509_crt_t crt = nullptr;
  if (gnutls_x509_crt_init(&crt) < 0) return std::string();
  std::string identity;
  if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) >= 0) {
    // The kind is part of the identity (server/service/access_policy.h).
    if (std::string uri = FirstSan(crt, GNUTLS_SAN_URI); !uri.empty()) {
      identity = absl::StrCat(service::kUriIdentity, uri);
    } else if (std::string dns = FirstSan(crt, GNUTLS_SAN_DNSNAME); !dns.empty()) {
      identity = absl::StrCat(service::kDnsIdentity, dns);
    }
  }
  gnutls_x509_crt_deinit(crt);
  return identity;
}

}  // namespace sessiontoken::gateway
