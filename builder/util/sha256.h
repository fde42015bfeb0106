#pragma once

#include <openssl/evp.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace kiln {

/// Incremental SHA-256 (OpenSSL EVP).
class Sha256 {
 public:
  Sha256();
  void update(std::string_view data);
  /// Lowercase hex digest; the hasher is finished afterwards.
  std::string hex();

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

std::string sha256_hex(std::string_view data);
std::string sha256_file(const std::filesystem::path& path);
/// True for 64 lowercase or uppercase hex digits.
bool is_sha256_hex(std::string_view text);

}  // namespace kiln
