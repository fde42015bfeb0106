#include "builder/upload/aws_settings.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/scan.h"

namespace kiln::aws {
namespace fs = std::filesystem;

namespace {

// A shared config file is a few KiB; anything larger is not one.
constexpr std::uintmax_t kMaxSharedFile = 1 << 20;

std::string non_empty(const Environment& env, const std::string& name) {
  auto value = env(name);
  return value ? *value : std::string();
}

fs::path home_file(const Environment& env, const std::string& variable, const char* default_name) {
  if (std::string path = non_empty(env, variable); !path.empty()) return path;
  std::string home = non_empty(env, "HOME");
  return fs::path(home.empty() ? "/root" : home) / ".aws" / default_name;
}

std::map<std::string, std::map<std::string, std::string>> read_shared_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return {};
  if (fs::file_size(path, ec) > kMaxSharedFile)
    throw Error(path.string() + " is larger than 1 MiB: not an AWS config file");
  return parse_shared_file(read_file(path));
}

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

std::string without_trailing_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

}  // namespace

std::map<std::string, std::map<std::string, std::string>> parse_shared_file(
    const std::string& text) {
  std::map<std::string, std::map<std::string, std::string>> sections;
  std::string section;
  std::string_view rest = text;
  while (!rest.empty()) {
    std::size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    // Nested blocks (`s3 =` then indented `max_concurrent_requests = 10`) are not kiln's.
    bool indented = !line.empty() && (line[0] == ' ' || line[0] == '\t');
    line = scan::trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';' || indented) continue;
    if (line.front() == '[') {
      std::size_t close = line.find(']');
      section = close == std::string_view::npos
                    ? std::string()
                    : std::string(scan::trim(line.substr(1, close - 1)));
      continue;
    }
    std::size_t eq = line.find('=');
    if (eq == std::string_view::npos || section.empty()) continue;
    std::string key(scan::trim(line.substr(0, eq)));
    std::string_view value = scan::trim(line.substr(eq + 1));
    // An inline comment starts at " #" or " ;".
    for (std::size_t i = 1; i < value.size(); ++i) {
      if ((value[i] == '#' || value[i] == ';') && (value[i - 1] == ' ' || value[i - 1] == '\t')) {
        value = scan::trim(value.substr(0, i));
        break;
      }
    }
    sections[section][key] = std::string(value);
  }
  return sections;
}

std::string AwsSettings::endpoint(const std::string& service) const {
  auto it = endpoints.find(service);
  if (it != endpoints.end()) return it->second;
  return fmt::format("https://{}.{}.amazonaws.com", service, region);
}

AwsSettings resolve_settings(const AwsOptions& options, const Environment& env) {
  AwsSettings settings;
  std::string profile = options.profile;
  if (profile.empty()) profile = non_empty(env, "AWS_PROFILE");
  if (profile.empty()) profile = "default";
  const fs::path credentials_file = home_file(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
  const fs::path config_file = home_file(env, "AWS_CONFIG_FILE", "config");
  auto credentials = read_shared_file(credentials_file);
  auto config = read_shared_file(config_file);
  // The config file names profiles "profile NAME", except "default".
  const auto& config_profile = config[profile == "default" ? "default" : "profile " + profile];
  const auto& credentials_profile = credentials[profile];
  auto setting = [&](const std::string& key) -> std::pair<std::string, std::string> {
    if (auto it = credentials_profile.find(key); it != credentials_profile.end())
      return {it->second, credentials_file.string()};
    if (auto it = config_profile.find(key); it != config_profile.end())
      return {it->second, config_file.string()};
    return {};
  };

  Credentials& creds = settings.credentials;
  if (std::string key = non_empty(env, "AWS_ACCESS_KEY_ID"); !key.empty()) {
    creds.access_key_id = key;
    creds.secret_access_key = non_empty(env, "AWS_SECRET_ACCESS_KEY");
    creds.session_token = non_empty(env, "AWS_SESSION_TOKEN");
    creds.source = "the environment (AWS_ACCESS_KEY_ID)";
    if (creds.secret_access_key.empty())
      throw Error("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
  } else if (std::string token_file = non_empty(env, "AWS_WEB_IDENTITY_TOKEN_FILE");
             !token_file.empty() || !setting("web_identity_token_file").first.empty()) {
    bool from_env = !token_file.empty();
    creds.pending = Credentials::Pending::web_identity;
    creds.web_identity_token_file =
        from_env ? token_file : setting("web_identity_token_file").first;
    creds.role_arn = from_env ? non_empty(env, "AWS_ROLE_ARN") : setting("role_arn").first;
    creds.role_session_name =
        from_env ? non_empty(env, "AWS_ROLE_SESSION_NAME") : setting("role_session_name").first;
    if (creds.role_session_name.empty()) creds.role_session_name = "kiln-upload";
    creds.source = from_env ? "a web identity (AWS_WEB_IDENTITY_TOKEN_FILE)"
                            : fmt::format("a web identity (profile {})", profile);
    if (creds.role_arn.empty())
      throw Error(creds.source + " is given but no role to assume (AWS_ROLE_ARN or role_arn)");
  } else if (auto [key_id, where] = setting("aws_access_key_id"); !key_id.empty()) {
    creds.access_key_id = key_id;
    creds.secret_access_key = setting("aws_secret_access_key").first;
    creds.session_token = setting("aws_session_token").first;
    creds.source = fmt::format("profile {} in {}", profile, where);
    if (creds.secret_access_key.empty())
      throw Error(fmt::format("profile {} in {} has aws_access_key_id but no aws_secret_access_key",
                              profile, where));
  } else if (non_empty(env, "AWS_EC2_METADATA_DISABLED") != "true") {
    creds.pending = Credentials::Pending::instance_role;
    creds.metadata_endpoint = non_empty(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (creds.metadata_endpoint.empty()) creds.metadata_endpoint = "http://169.254.169.254";
    creds.metadata_endpoint = without_trailing_slash(creds.metadata_endpoint);
    creds.source = "the instance role (instance metadata service)";
  } else if (options.need_credentials) {
    throw Error(fmt::format(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
        "AWS_SESSION_TOKEN for temporary ones), AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, "
        "or give profile {} keys in {} (--profile or AWS_PROFILE picks another profile); the "
        "instance role is not asked because AWS_EC2_METADATA_DISABLED=true",
        profile, credentials_file.string()));
  }

  if (!options.region.empty()) {
    settings.region = options.region;
    settings.region_source = "--region";
  } else if (std::string region = non_empty(env, "AWS_REGION"); !region.empty()) {
    settings.region = region;
    settings.region_source = "AWS_REGION";
  } else if (std::string fallback = non_empty(env, "AWS_DEFAULT_REGION"); !fallback.empty()) {
    settings.region = fallback;
    settings.region_source = "AWS_DEFAULT_REGION";
  } else if (auto [region, where] = setting("region"); !region.empty()) {
    settings.region = region;
    settings.region_source = fmt::format("profile {} in {}", profile, where);
  } else {
    throw Error(
        fmt::format("no AWS region: give --region, set AWS_REGION, or set region in "
                    "profile {} of {}",
                    profile, config_file.string()));
  }
  bool plain = std::all_of(settings.region.begin(), settings.region.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
  if (!plain || settings.region.size() > 32)
    throw Error("bad AWS region '" + settings.region + "' (from " + settings.region_source + ")");

  std::string shared = non_empty(env, "AWS_ENDPOINT_URL");
  if (shared.empty()) shared = setting("endpoint_url").first;
  for (const char* service : {"ebs", "ec2", "sts"}) {
    std::string url = non_empty(env, "AWS_ENDPOINT_URL_" + upper(service));
    if (url.empty()) url = shared;
    if (!url.empty()) settings.endpoints[service] = without_trailing_slash(url);
  }
  return settings;
}

}  // namespace kiln::aws
