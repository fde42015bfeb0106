#pragma once

#include <cstddef>
#include <string_view>

#include "builder/fetch/http_types.h"

namespace kiln::firstboot {

/// A small HTTP/1.1 client over OpenSSL for the static agent (libcurl cannot be linked
/// statically here): one request per connection, Content-Length or chunked bodies. With
/// `ca_pem` set the server must present a certificate that CA signed for the URL's host or IP;
/// without it the server is not verified (the anonymous first cluster-info fetch, whose
/// content is then checked by signature and CA pin). A client certificate and key, when given,
/// authenticate the call (the kubelet's own, for the update health check). Plain http://
/// works too (cloud metadata).
/// `timeout_seconds` bounds the whole request, and a body over `max_response_bytes` is refused;
/// every failure (malformed answer included) comes back in `error`, never as an exception.
http::Response request(const http::Request& request);

/// Parses a complete raw HTTP/1.1 response (head, then a Content-Length, chunked or
/// close-delimited body); throws kiln::Error on anything malformed or a body over `max_body`.
http::Response parse_http_response(std::string_view raw, std::size_t max_body);

}  // namespace kiln::firstboot
