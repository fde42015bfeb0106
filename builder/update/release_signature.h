#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

/// Signs `data` with the PEM private key in `key_file`: Ed25519, or ECDSA on P-256 with
/// SHA-256. Returns the signature file's text (base64 and a newline). The key is read here
/// and nowhere else; an unreadable, encrypted or other kind of key is an Error naming the file
/// and what kiln accepts, never quoting the key.
std::string sign_release(const std::filesystem::path& key_file, std::string_view data);

/// The PEM public key of the private key in `key_file`, for a recipe's updates.trusted_keys.
std::string public_key_of(const std::filesystem::path& key_file);

/// Checks that `pem` is one public key kiln can verify with (Ed25519 or ECDSA P-256); an
/// empty string when it is, else what is wrong with it.
std::string check_trusted_key(std::string_view pem);

/// The index into `trusted_keys` (PEM public keys) of the key that signed `data`, or nullopt
/// when none did, the signature text is malformed or larger than 1 KiB.
std::optional<std::size_t> verify_release(const std::vector<std::string>& trusted_keys,
                                          std::string_view data, std::string_view signature);

}  // namespace kiln
