#pragma once

#include <optional>
#include <string>

namespace kiln {

/// A kubeadm bootstrap token "<id>.<secret>": id [a-z0-9]{6}, secret [a-z0-9]{16}.
struct BootstrapToken {
  std::string id;
  std::string secret;
  std::string text() const { return id + "." + secret; }
  /// "abcdef.****************": safe for logs and `kiln stamp --show`.
  std::string masked() const { return id + "." + std::string(secret.size(), '*'); }
};

/// A new token from the OpenSSL CSPRNG.
BootstrapToken generate_bootstrap_token();

/// Parses "<id>.<secret>"; nullopt unless it matches kubeadm's format exactly.
std::optional<BootstrapToken> parse_bootstrap_token(const std::string& text);

}  // namespace kiln
