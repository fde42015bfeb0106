#include "builder/join/ca_pin.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "builder/util/error.h"
#include "builder/util/sha256.h"

namespace kiln {

std::string ca_pin_from_pem(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), int(pem.size())),
                                                BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) throw Error("the CA certificate is not a PEM-encoded X.509 certificate");
  unsigned char* der = nullptr;
  int length = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert.get()), &der);
  if (length <= 0) throw Error("cannot encode the CA certificate's public key");
  std::string spki(reinterpret_cast<char*>(der), size_t(length));
  OPENSSL_free(der);
  return "sha256:" + sha256_hex(spki);
}

bool is_valid_ca_pin(const std::string& pin) {
  return pin.rfind("sha256:", 0) == 0 && is_sha256_hex(pin.substr(7));
}

}  // namespace kiln
