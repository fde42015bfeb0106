#pragma once

#include <string>

namespace kiln {

/// The detached JWS (HS256, "kid" = token id, keyed by the token secret) that
/// kube-controller-manager's bootstrapsigner stores as cluster-info's
/// `jws-kubeconfig-<token-id>`: "<header>..<signature>". Byte-identical to
/// k8s.io/cluster-bootstrap/token/jws.ComputeDetachedSignature.
std::string compute_detached_jws(const std::string& content, const std::string& token_id,
                                 const std::string& token_secret);

enum class JwsCheck { valid, malformed, wrong_algorithm, wrong_key_id, bad_signature };

/// Verifies a detached JWS over `content` with the token; constant-time signature compare.
JwsCheck verify_detached_jws(const std::string& jws, const std::string& content,
                             const std::string& token_id, const std::string& token_secret);

const char* describe(JwsCheck check);

}  // namespace kiln
