#pragma once

#include <string>

namespace kiln {

/// kubeadm's --discovery-token-ca-cert-hash for a PEM CA certificate: "sha256:" and the hex
/// SHA-256 of the certificate's DER SubjectPublicKeyInfo. Throws kiln::Error on bad PEM.
std::string ca_pin_from_pem(const std::string& pem);

/// True for "sha256:" followed by 64 hex digits (the only form kubeadm accepts).
bool is_valid_ca_pin(const std::string& pin);

}  // namespace kiln
