#pragma once

#include "builder/fetch/http_types.h"

namespace kiln::firstboot {

/// A small HTTP/1.1 client over OpenSSL for the static agent (libcurl cannot be linked
/// statically here): one request per connection, Content-Length or chunked bodies. With
/// `ca_pem` set the server must present a certificate that CA signed for the URL's host or IP;
/// without it the server is not verified (the anonymous first cluster-info fetch, whose
/// content is then checked by signature and CA pin). Plain http:// works too (cloud metadata).
http::Response request(const http::Request& request);

}  // namespace kiln::firstboot
