#include "builder/join/jws.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <nlohmann/json.hpp>

#include "builder/util/base64.h"
#include "builder/util/error.h"

namespace kiln {
namespace {

std::string hmac_sha256(const std::string& key, const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!HMAC(EVP_sha256(), key.data(), int(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &length)) {
    throw Error("OpenSSL: HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<char*>(digest), length);
}

// go-jose serialises the protected header with its keys sorted.
std::string protected_header(const std::string& token_id) {
  return base64url_encode("{\"alg\":\"HS256\",\"kid\":\"" + token_id + "\"}");
}

// A protected header is two short fields; anything much longer is not one of ours.
constexpr std::size_t kMaxHeaderBytes = 4096;

}  // namespace

std::string compute_detached_jws(const std::string& content, const std::string& token_id,
                                 const std::string& token_secret) {
  std::string header = protected_header(token_id);
  std::string signature = hmac_sha256(token_secret, header + "." + base64url_encode(content));
  return header + ".." + base64url_encode(signature);
}

JwsCheck verify_detached_jws(const std::string& jws, const std::string& content,
                             const std::string& token_id, const std::string& token_secret) {
  auto dots = jws.find("..");
  if (dots == std::string::npos || jws.find('.', dots + 2) != std::string::npos)
    return JwsCheck::malformed;
  std::string header_part = jws.substr(0, dots);
  if (header_part.size() > kMaxHeaderBytes / 3 * 4 + 4) return JwsCheck::malformed;
  auto header = base64url_decode(header_part);
  auto signature = base64url_decode(jws.substr(dots + 2));
  if (!header || !signature || header->size() > kMaxHeaderBytes) return JwsCheck::malformed;
  auto fields = nlohmann::json::parse(*header, nullptr, /*allow_exceptions=*/false);
  if (fields.is_discarded() || !fields.is_object()) return JwsCheck::malformed;
  auto alg = fields.find("alg");
  auto kid = fields.find("kid");
  if (alg == fields.end() || !alg->is_string() || kid == fields.end() || !kid->is_string())
    return JwsCheck::malformed;
  if (alg->get_ref<const std::string&>() != "HS256") return JwsCheck::wrong_algorithm;
  if (kid->get_ref<const std::string&>() != token_id) return JwsCheck::wrong_key_id;
  std::string expected = hmac_sha256(token_secret, header_part + "." + base64url_encode(content));
  if (signature->size() != expected.size() ||
      CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0) {
    return JwsCheck::bad_signature;
  }
  return JwsCheck::valid;
}

const char* describe(JwsCheck check) {
  switch (check) {
    case JwsCheck::valid:
      return "valid";
    case JwsCheck::malformed:
      return "the signature is not a detached JWS";
    case JwsCheck::wrong_algorithm:
      return "the signature does not use HS256";
    case JwsCheck::wrong_key_id:
      return "the signature was made for another token id";
    case JwsCheck::bad_signature:
      return "the signature does not match this token (tampered cluster-info or wrong token)";
  }
  return "?";
}

}  // namespace kiln
