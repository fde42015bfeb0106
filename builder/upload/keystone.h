#pragma once

#include <functional>
#include <string>

#include "builder/upload/openstack_settings.h"
#include "builder/upload/rest_session.h"

namespace kiln::openstack {

/// What authenticating gives: a token for the image service's requests and where that
/// service is. `token` is a secret: it goes into one request header and nowhere else.
struct ImageAccess {
  std::string token;      ///< empty for auth type "none"
  std::string image_url;  ///< the image API's base, ending in /v2
};

/// The body of Keystone v3's POST /auth/tokens for `auth` (password, application
/// credential or token), scoped to the project where the method takes a scope. `redact`
/// puts "<secret>" where the password, secret or token would be (for --dry-run).
std::string token_request_body(const Auth& auth, bool redact);

/// The image service's URL in a Keystone token document's catalog: the endpoint of type
/// "image" on `interface`, in `region` when one is given (else the only or first one).
/// Throws Error naming what the catalog lacks. Bounded: the document is capped by the caller
/// and parsed by nlohmann::json without recursion beyond its depth limit.
std::string image_endpoint_from_catalog(const std::string& token_document,
                                        const std::string& interface, const std::string& region);

/// The image API's base URL: `url` without trailing slashes, with "/v2" appended unless it
/// already names a v2 version.
std::string image_api_base(std::string url);

/// Keystone's v3 base: auth_url without trailing slashes, "/v3" appended unless present.
std::string identity_url(const Auth& auth);

/// The image API's base when it is known without the catalog (the endpoint override, or
/// auth type "none"'s endpoint); empty when the catalog names it.
std::string image_url_without_catalog(const CloudSettings& settings);

/// The words of an OpenStack error answer: Keystone's {"error": {"title", "message"}},
/// Glance's plain text or HTML page (tags dropped), at most 300 printable characters.
std::string error_text(const std::string& body);

/// Throws the failed reply as the user should see it: CloudRefusal for a 4xx (exit 6),
/// Error otherwise; the message names the step, the status and the service's words.
[[noreturn]] void throw_failure(const std::string& what, const upload::RestReply& reply);

/// Authenticates with Keystone (or, for auth type "none", only finds the image endpoint)
/// and finds the image service. The endpoint override, when set, wins over the catalog.
ImageAccess authenticate(upload::RestSession& session, const CloudSettings& settings,
                         const std::function<void(const std::string&)>& say);

}  // namespace kiln::openstack
