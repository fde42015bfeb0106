#pragma once

#include <string>

namespace kiln {

/// kubeadm's --discovery-token-ca-cert-hash for a PEM CA certificate: "sha256:" and the hex
/// SHA-256 of the certificate's DER SubjectPublicKeyInfo. Throws kiln::Error on bad PEM.
std::string ca_pin_from_pem(const std::string& pem);

/// The certificates of a PEM bundle whose public key matches `pin`, re-encoded as PEM, in
/// bundle order; "" when none does. Whatever else the bundle holds (another CA appended by
/// someone who knows the token) is dropped, so only the pinned key is ever trusted. Reads at
/// most 64 certificates. Throws kiln::Error when the bundle holds no certificate at all.
std::string certificates_matching_pin(const std::string& pem_bundle, const std::string& pin);

/// True for "sha256:" followed by 64 hex digits (the only form kubeadm accepts).
bool is_valid_ca_pin(const std::string& pin);

}  // namespace kiln
