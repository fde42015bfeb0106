#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "builder/util/environment.h"

namespace kiln::aws {

using kiln::Environment;
using kiln::process_environment;

/// Access key, secret and (for temporary credentials) session token. Only `source` may ever
/// be printed.
struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  std::string source;  ///< "environment", "profile ops in ~/.aws/credentials", ...

  /// Where the keys still have to come from, when they are not given directly: a role
  /// assumed with a web identity token (EKS service accounts, CI OIDC), or the instance's role
  /// from the instance metadata service. obtain_credentials() fetches them.
  enum class Pending { none, web_identity, instance_role };
  Pending pending = Pending::none;
  std::string role_arn, web_identity_token_file, role_session_name;  ///< web identity
  std::string metadata_endpoint;                                     ///< instance role
};

/// Where kiln sends one service's requests, and in which region it signs them.
struct AwsSettings {
  std::string region;
  std::string region_source;
  Credentials credentials;
  /// Per service ("ebs", "ec2"): the endpoint URL without a trailing slash.
  std::map<std::string, std::string> endpoints;

  /// The endpoint for `service`: AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL or the
  /// profile's endpoint_url, else https://SERVICE.REGION.amazonaws.com.
  std::string endpoint(const std::string& service) const;
};

/// What the command line gave (empty: not given).
struct AwsOptions {
  std::string region;
  std::string profile;
  /// Dry runs need no credentials: they print requests unsigned.
  bool need_credentials = true;
};

/// Resolves region, credentials and endpoints the way AWS's SDKs do, in their order:
/// credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, then a web
/// identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or the profile's
/// web_identity_token_file and role_arn), then the profile's keys (--profile, AWS_PROFILE,
/// "default") in AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and AWS_CONFIG_FILE
/// (~/.aws/config), then the instance role (unless AWS_EC2_METADATA_DISABLED=true; the
/// service at AWS_EC2_METADATA_SERVICE_ENDPOINT or 169.254.169.254); region from --region,
/// AWS_REGION, AWS_DEFAULT_REGION, the profile's `region`; endpoints from
/// AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, the profile's `endpoint_url`. Throws an
/// Error that names what is missing and where it was looked for, never a secret.
AwsSettings resolve_settings(const AwsOptions& options, const Environment& environment);

/// The `[section]` key/value pairs of an AWS shared config or credentials file (INI: `#` and
/// `;` comments, `key = value`, indented lines continue a nested block and are skipped).
/// Sections keep their names as written ("default", "profile ops").
std::map<std::string, std::map<std::string, std::string>> parse_shared_file(
    const std::string& text);

}  // namespace kiln::aws
