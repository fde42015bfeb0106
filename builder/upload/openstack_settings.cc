#include "builder/upload/openstack_settings.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <optional>
#include <vector>

#include "builder/util/error.h"
#include "builder/util/files.h"

namespace kiln::openstack {
namespace fs = std::filesystem;

namespace {

// clouds.yaml is a few KiB; anything much larger is not one.
constexpr std::uintmax_t kMaxConfigFile = 1 << 20;

using Fields = std::map<std::string, std::string>;

/// The keys of an `auth` block kiln reads, with the Auth member each fills.
const std::vector<std::pair<const char*, std::string Auth::*>> kAuthKeys = {
    {"auth_url", &Auth::auth_url},
    {"username", &Auth::username},
    {"user_id", &Auth::user_id},
    {"password", &Auth::password},
    {"user_domain_name", &Auth::user_domain_name},
    {"user_domain_id", &Auth::user_domain_id},
    {"project_name", &Auth::project_name},
    {"project_id", &Auth::project_id},
    {"project_domain_name", &Auth::project_domain_name},
    {"project_domain_id", &Auth::project_domain_id},
    {"application_credential_id", &Auth::application_credential_id},
    {"application_credential_name", &Auth::application_credential_name},
    {"application_credential_secret", &Auth::application_credential_secret},
    {"token", &Auth::token},
    {"endpoint", &Auth::endpoint},
};

/// The settings outside `auth` kiln reads.
const std::vector<const char*> kCloudKeys = {
    "auth_type", "region_name", "interface", "image_endpoint_override", "cacert", "verify"};

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

std::string where(const fs::path& file, const YAML::Node& node) {
  return fmt::format("{}:{}:{}", file.string(), node.Mark().line + 1, node.Mark().column + 1);
}

/// `key: scalar` pairs of a map node into `out` (later files override earlier ones).
void read_scalars(const fs::path& file, const YAML::Node& map, const std::string& prefix,
                  Fields& out) {
  for (const auto& entry : map) {
    auto key = entry.first.as<std::string>();
    if (key == "auth" && prefix.empty()) {
      if (!entry.second.IsMap()) throw Error(where(file, entry.second) + ": auth must be a map");
      read_scalars(file, entry.second, "auth.", out);
      continue;
    }
    if (!entry.second.IsScalar()) continue;  // settings kiln does not use (regions: [...])
    out[prefix + key] = entry.second.Scalar();
  }
}

YAML::Node load_yaml(const fs::path& file) {
  std::error_code ec;
  if (fs::file_size(file, ec) > kMaxConfigFile)
    throw Error(file.string() + " is larger than 1 MiB: not a clouds.yaml");
  try {
    return YAML::Load(read_file(file));
  } catch (const YAML::Exception& e) {
    throw Error(
        fmt::format("{}:{}:{}: {}", file.string(), e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

/// The first of OpenStack's search places that holds `name`.
std::optional<fs::path> find_config(const std::string& name, const Environment& env) {
  std::vector<fs::path> places;
  if (name == "clouds.yaml") {
    if (auto file = env("OS_CLIENT_CONFIG_FILE")) places.emplace_back(*file);
  }
  places.push_back(fs::current_path() / name);
  auto home = env("HOME");
  places.push_back(fs::path(home ? *home : "/root") / ".config/openstack" / name);
  places.push_back(fs::path("/etc/openstack") / name);
  for (const auto& place : places) {
    std::error_code ec;
    if (fs::is_regular_file(place, ec)) return place;
  }
  return std::nullopt;
}

Fields fields_from_clouds_yaml(const std::string& cloud, const Environment& env,
                               std::string& source) {
  auto clouds = find_config("clouds.yaml", env);
  if (!clouds) {
    throw Error(fmt::format(
        "cloud '{}': no clouds.yaml in OS_CLIENT_CONFIG_FILE, ./, ~/.config/openstack/ or "
        "/etc/openstack/",
        cloud));
  }
  Fields fields;
  bool found = false;
  for (const auto& file : {std::optional(*clouds), find_config("secure.yaml", env)}) {
    if (!file) continue;
    YAML::Node doc = load_yaml(*file);
    YAML::Node entry = doc.IsMap() && doc["clouds"].IsMap() ? doc["clouds"][cloud] : YAML::Node();
    if (!entry.IsDefined()) continue;
    if (!entry.IsMap())
      throw Error(fmt::format("{}: cloud '{}' must be a map", where(*file, entry), cloud));
    read_scalars(*file, entry, "", fields);
    found = true;
  }
  if (!found) throw Error(fmt::format("{} has no cloud named '{}'", clouds->string(), cloud));
  source = fmt::format("cloud '{}' in {}", cloud, clouds->string());
  return fields;
}

Fields fields_from_environment(const Environment& env) {
  Fields fields;
  auto take = [&](const std::string& key, const std::string& variable) {
    if (auto value = env(variable); value && !fields.count(key)) fields[key] = *value;
  };
  for (const auto& [key, member] : kAuthKeys) take(std::string("auth.") + key, "OS_" + upper(key));
  take("auth.project_name", "OS_TENANT_NAME");
  take("auth.project_id", "OS_TENANT_ID");
  for (const char* key : kCloudKeys) take(key, "OS_" + upper(key));
  if (auto insecure = env("OS_INSECURE")) fields["verify"] = *insecure == "true" ? "false" : "true";
  // OS_DOMAIN_NAME is the default domain of both the user and the project.
  if (auto domain = env("OS_DOMAIN_NAME")) {
    take("auth.user_domain_name", "OS_DOMAIN_NAME");
    take("auth.project_domain_name", "OS_DOMAIN_NAME");
  }
  return fields;
}

std::string canonical_auth_type(const std::string& type, const Auth& auth) {
  if (type.empty()) {
    if (!auth.application_credential_secret.empty() || !auth.application_credential_id.empty())
      return "v3applicationcredential";
    if (!auth.token.empty()) return "token";
    if (auth.auth_url.empty() && !auth.endpoint.empty()) return "none";
    return "password";
  }
  if (type == "password" || type == "v3password") return "password";
  if (type == "v3applicationcredential" || type == "applicationcredential")
    return "v3applicationcredential";
  if (type == "token" || type == "v3token" || type == "admin_token") return "token";
  if (type == "none" || type == "noauth") return "none";
  throw Error("auth_type '" + type +
              "' is not one kiln supports: password, v3applicationcredential, token or none");
}

void require(bool present, const std::string& what, const CloudSettings& settings) {
  if (!present) throw Error(fmt::format("{}: {} is missing", settings.source, what));
}

}  // namespace

CloudSettings resolve_cloud(const std::string& cloud_option, const Environment& env,
                            bool need_credentials) {
  CloudSettings settings;
  std::string cloud = cloud_option;
  if (cloud.empty()) {
    if (auto name = env("OS_CLOUD")) cloud = *name;
  }
  Fields fields;
  if (!cloud.empty()) {
    fields = fields_from_clouds_yaml(cloud, env, settings.source);
  } else {
    fields = fields_from_environment(env);
    settings.source = "OS_* variables";
    if (fields.empty()) {
      throw Error(
          "no OpenStack cloud given: pass --cloud NAME (an entry of clouds.yaml), set OS_CLOUD, "
          "or set the OS_* variables (OS_AUTH_URL, OS_USERNAME …) of an openrc file");
    }
  }
  auto field = [&](const std::string& key) {
    auto it = fields.find(key);
    return it == fields.end() ? std::string() : it->second;
  };
  for (const auto& [key, member] : kAuthKeys)
    settings.auth.*member = field(std::string("auth.") + key);
  settings.auth.type = canonical_auth_type(field("auth_type"), settings.auth);
  settings.region = field("region_name");
  if (std::string interface = field("interface"); !interface.empty()) {
    if (interface.ends_with("URL")) interface.resize(interface.size() - 3);  // "publicURL"
    if (interface != "public" && interface != "internal" && interface != "admin")
      throw Error(settings.source + ": interface '" + interface +
                  "' is not public, internal or admin");
    settings.interface = interface;
  }
  settings.image_endpoint_override = field("image_endpoint_override");
  settings.ca_file = field("cacert");
  std::string verify = field("verify");
  settings.verify = !(verify == "false" || verify == "False" || verify == "no" || verify == "0");

  Auth& auth = settings.auth;
  if (auth.type == "none") {
    require(!auth.endpoint.empty() || !settings.image_endpoint_override.empty(),
            "the image endpoint (auth.endpoint or image_endpoint_override) for auth_type none",
            settings);
    return settings;
  }
  require(!auth.auth_url.empty(), "auth_url (OS_AUTH_URL)", settings);
  if (auth.auth_url.find("://") == std::string::npos)
    throw Error(settings.source + ": auth_url is not a URL");
  if (auth.type == "password") {
    require(!auth.username.empty() || !auth.user_id.empty(), "username or user_id", settings);
    require(!auth.project_name.empty() || !auth.project_id.empty(),
            "project_name or project_id (an image belongs to a project)", settings);
    if (need_credentials) require(!auth.password.empty(), "password (OS_PASSWORD)", settings);
  } else if (auth.type == "v3applicationcredential") {
    require(!auth.application_credential_id.empty() ||
                (!auth.application_credential_name.empty() &&
                 (!auth.username.empty() || !auth.user_id.empty())),
            "application_credential_id (or its name and the user)", settings);
    if (need_credentials)
      require(!auth.application_credential_secret.empty(), "application_credential_secret",
              settings);
  } else if (auth.type == "token") {
    if (need_credentials) require(!auth.token.empty(), "token (OS_TOKEN)", settings);
  }
  bool user_by_name = auth.user_id.empty() && !auth.username.empty();
  if (user_by_name && auth.user_domain_name.empty() && auth.user_domain_id.empty())
    auth.user_domain_id = "default";
  bool project_by_name = auth.project_id.empty() && !auth.project_name.empty();
  if (project_by_name && auth.project_domain_name.empty() && auth.project_domain_id.empty())
    auth.project_domain_id = "default";
  return settings;
}

}  // namespace kiln::openstack
