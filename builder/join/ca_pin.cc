#include "builder/join/ca_pin.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>

#include "builder/util/error.h"
#include "builder/util/sha256.h"

namespace kiln {

namespace {

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using Cert = std::unique_ptr<X509, decltype(&X509_free)>;

constexpr int kMaxBundleCertificates = 64;

Bio memory_bio(const std::string& pem) {
  if (pem.size() > size_t(INT32_MAX)) throw Error("the CA bundle is too large");
  return Bio(BIO_new_mem_buf(pem.data(), int(pem.size())), BIO_free);
}

std::string pin_of(X509* cert) {
  unsigned char* der = nullptr;
  int length = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (length <= 0) throw Error("cannot encode the CA certificate's public key");
  std::string spki(reinterpret_cast<char*>(der), size_t(length));
  OPENSSL_free(der);
  return "sha256:" + sha256_hex(spki);
}

}  // namespace

std::string ca_pin_from_pem(const std::string& pem) {
  Bio bio = memory_bio(pem);
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  ERR_clear_error();
  if (!cert) throw Error("the CA certificate is not a PEM-encoded X.509 certificate");
  return pin_of(cert.get());
}

std::string certificates_matching_pin(const std::string& pem_bundle, const std::string& pin) {
  Bio in = memory_bio(pem_bundle);
  Bio out(BIO_new(BIO_s_mem()), BIO_free);
  int count = 0;
  for (; count < kMaxBundleCertificates; ++count) {
    Cert cert(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr), X509_free);
    if (!cert) break;
    if (pin_of(cert.get()) == pin && PEM_write_bio_X509(out.get(), cert.get()) != 1)
      throw Error("cannot encode the pinned CA certificate");
  }
  ERR_clear_error();  // the read that ends the loop leaves "no start line" behind
  if (count == 0) throw Error("the CA certificate is not a PEM-encoded X.509 certificate");
  char* data = nullptr;
  long length = BIO_get_mem_data(out.get(), &data);
  return length > 0 ? std::string(data, size_t(length)) : std::string();
}

bool is_valid_ca_pin(const std::string& pin) {
  return pin.rfind("sha256:", 0) == 0 && is_sha256_hex(pin.substr(7));
}

}  // namespace kiln
