#pragma once

// Google Cloud credentials the way Google's client libraries find them (Application Default
// Credentials): a service account key or an authorized user file, else the metadata server
// of the VM or pod kiln runs on.
#include <functional>
#include <string>

#include "builder/upload/rest_session.h"
#include "builder/util/environment.h"

namespace kiln::google {

/// Where the access token comes from. Only `source`, `kind` and `client_email` may be
/// printed; the key, secret and refresh token go into one request body each.
struct Credentials {
  /// "service_account", "authorized_user", "metadata" or "access_token".
  std::string kind;
  std::string source;  ///< "GOOGLE_APPLICATION_CREDENTIALS (/path/key.json)"…
  std::string client_email, private_key, private_key_id;
  std::string project_id;  ///< a service account key's project, the default --project
  std::string client_id, client_secret, refresh_token;
  std::string token_uri = "https://oauth2.googleapis.com/token";
  std::string metadata_host = "metadata.google.internal";
  std::string access_token;  ///< kind "access_token": CLOUDSDK_AUTH_ACCESS_TOKEN
};

/// CLOUDSDK_AUTH_ACCESS_TOKEN; else the JSON file at GOOGLE_APPLICATION_CREDENTIALS or
/// application_default_credentials.json in gcloud's folder (CLOUDSDK_CONFIG, else
/// ~/.config/gcloud); else the metadata server
/// (GCE_METADATA_HOST overrides its address). Throws Error naming the file and the field
/// that is wrong, never a secret.
Credentials find_credentials(const Environment& environment);

/// Parses a credentials file's JSON (bounded: the caller caps the file).
Credentials parse_credentials_file(const std::string& json, const std::string& source);

/// The RS256-signed JWT a service account exchanges for a token (RFC 7523), for
/// `scope`, issued at `now`.
std::string service_account_assertion(const Credentials& credentials, const std::string& scope,
                                      long long now);

/// The token request's form body; `redact` puts "<secret>" where a secret would be.
std::string token_request_body(const Credentials& credentials, const std::string& scope,
                               long long now, bool redact);

/// An access token for the cloud-platform scope, from the token endpoint or the metadata
/// server. Throws Error with OAuth's error and description.
std::string access_token(upload::RestSession& session, const Credentials& credentials,
                         const std::function<void(const std::string&)>& say);

/// Google APIs' error answer {"error": {"code", "message", "status"}} or OAuth's
/// {"error", "error_description"}: "PERMISSION_DENIED: …", printable and capped.
std::string error_text(const std::string& body);

/// Throws the failed reply: CloudRefusal for a 4xx, Error otherwise, naming the step.
[[noreturn]] void throw_failure(const std::string& what, const upload::RestReply& reply);

}  // namespace kiln::google
