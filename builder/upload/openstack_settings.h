#pragma once

#include <string>

#include "builder/util/environment.h"

namespace kiln::openstack {

/// How kiln proves who it is to the cloud: the `auth` block of clouds.yaml or the OS_*
/// variables. Only `source` and the names (user, project, domains) may ever be printed.
struct Auth {
  /// "password", "v3applicationcredential", "token" or "none" (an image endpoint without
  /// Keystone). The v3 spellings ("v3password", "v3token", "admin_token") are accepted.
  std::string type;
  std::string auth_url;  ///< Keystone, e.g. https://keystone.example:5000/v3
  std::string username, user_id, password;
  std::string user_domain_name, user_domain_id;
  std::string project_name, project_id, project_domain_name, project_domain_id;
  std::string application_credential_id, application_credential_name, application_credential_secret;
  std::string token;
  std::string endpoint;  ///< auth type "none": the image service itself
};

struct CloudSettings {
  Auth auth;
  std::string region;                ///< empty: the catalog's only (or first) image endpoint
  std::string interface = "public";  ///< which catalog endpoint: public, internal, admin
  std::string image_endpoint_override;
  std::string ca_file;
  bool verify = true;
  std::string source;  ///< "cloud 'ops' in ~/.config/openstack/clouds.yaml", "OS_* variables"
};

/// Resolves the cloud the way OpenStack's own clients do. With `cloud` (--cloud) or
/// OS_CLOUD: that entry of clouds.yaml (OS_CLIENT_CONFIG_FILE, ./clouds.yaml,
/// ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml — the first that exists),
/// with secure.yaml from the same places merged over it. Otherwise the OS_* variables
/// (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, OS_APPLICATION_CREDENTIAL_ID,
/// OS_AUTH_TYPE …). A user or project given by name without a domain is in the "default"
/// domain. `need_credentials` false (a dry run) skips the check that secrets are present.
/// Throws an Error naming what is missing and where it was looked for, never a secret.
CloudSettings resolve_cloud(const std::string& cloud, const Environment& environment,
                            bool need_credentials = true);

}  // namespace kiln::openstack
