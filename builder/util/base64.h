#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kiln {

/// Standard base64 with padding (kubeconfig's *-data fields).
std::string base64_encode(std::string_view data);
std::optional<std::string> base64_decode(std::string_view text);

/// Base64url without padding (JWS, RFC 7515). Decoding is strict: no padding, no line breaks,
/// no non-zero leftover bits, so each byte string has one encoding.
std::string base64url_encode(std::string_view data);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace kiln
