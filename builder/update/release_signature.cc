#include "builder/update/release_signature.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>

#include "builder/util/base64.h"
#include "builder/util/error.h"
#include "builder/util/files.h"

namespace kiln {

namespace {

using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using DigestContext = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

constexpr const char* kAccepted = "Ed25519 or ECDSA P-256 (openssl genpkey -algorithm ed25519)";

Bio memory_bio(std::string_view text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), BIO_free);
}

/// Passphrase prompts would block a build: encrypted keys fail instead.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

/// Empty when `key` is a kind kiln signs with, else why not.
std::string unsupported(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) return "";
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
    char group[64] = {};
    std::size_t length = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof group, &length) == 1 &&
        std::string_view(group) == "prime256v1")
      return "";
    return std::string("an ECDSA key on curve ") + group + ", not P-256";
  }
  return std::string("a ") + EVP_PKEY_get0_type_name(key) + " key";
}

/// SHA-256 for ECDSA; Ed25519 hashes internally and takes no digest.
const EVP_MD* digest_for(EVP_PKEY* key) {
  return EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
}

Key read_private_key(const std::filesystem::path& key_file) {
  std::string pem;
  try {
    pem = read_file(key_file);
  } catch (const std::exception&) {
    throw Error("cannot read the signing key " + key_file.string());
  }
  Bio bio = memory_bio(pem);
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr), EVP_PKEY_free);
  std::fill(pem.begin(), pem.end(), '\0');
  if (!key) {
    throw Error("the signing key " + key_file.string() +
                " is not an unencrypted PEM private key; kiln signs with " + kAccepted);
  }
  if (std::string why = unsupported(key.get()); !why.empty())
    throw Error("the signing key " + key_file.string() + " is " + why + "; use " + kAccepted);
  return key;
}

Key read_public_key(std::string_view pem) {
  Bio bio = memory_bio(pem);
  return Key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
}

}  // namespace

std::string sign_release(const std::filesystem::path& key_file, std::string_view data) {
  Key key = read_private_key(key_file);
  DigestContext context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::size_t length = 0;
  if (!context ||
      EVP_DigestSignInit(context.get(), nullptr, digest_for(key.get()), nullptr, key.get()) != 1 ||
      EVP_DigestSign(context.get(), nullptr, &length,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1)
    throw Error("cannot sign with " + key_file.string());
  std::string signature(length, '\0');
  if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1)
    throw Error("cannot sign with " + key_file.string());
  signature.resize(length);
  return base64_encode(signature) + "\n";
}

std::string public_key_of(const std::filesystem::path& key_file) {
  Key key = read_private_key(key_file);
  Bio bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1)
    throw Error("cannot write the public key of " + key_file.string());
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::string check_trusted_key(std::string_view pem) {
  Key key = read_public_key(pem);
  if (!key) return "not a PEM public key (-----BEGIN PUBLIC KEY-----)";
  if (std::string why = unsupported(key.get()); !why.empty())
    return why + "; kiln verifies " + kAccepted;
  return "";
}

std::optional<std::size_t> verify_release(const std::vector<std::string>& trusted_keys,
                                          std::string_view data, std::string_view signature) {
  if (signature.size() > 1024) return std::nullopt;
  while (!signature.empty() && (signature.back() == '\n' || signature.back() == '\r'))
    signature.remove_suffix(1);
  auto raw = base64_decode(signature);
  if (!raw || raw->empty()) return std::nullopt;
  for (std::size_t i = 0; i < trusted_keys.size(); ++i) {
    Key key = read_public_key(trusted_keys[i]);
    if (!key || !unsupported(key.get()).empty()) continue;
    DigestContext context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!context || EVP_DigestVerifyInit(context.get(), nullptr, digest_for(key.get()), nullptr,
                                         key.get()) != 1)
      continue;
    if (EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(raw->data()),
                         raw->size(), reinterpret_cast<const unsigned char*>(data.data()),
                         data.size()) == 1)
      return i;
  }
  return std::nullopt;
}

}  // namespace kiln
