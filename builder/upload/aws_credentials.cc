#include "builder/upload/aws_credentials.h"

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "builder/upload/aws_client.h"
#include "builder/upload/rest_session.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/scan.h"

namespace kiln::aws {
namespace fs = std::filesystem;

namespace {

// A web identity token (a JWT) is a few KiB; a session token up to about 2 KiB.
constexpr std::size_t kMaxIdentityToken = 64 << 10;
constexpr std::size_t kMaxSessionToken = 8 << 10;

bool plausible(const std::string& value, std::size_t max) {
  return !value.empty() && value.size() <= max &&
         scan::all_of(value, [](char c) { return c > 0x20 && c < 0x7f; });
}

Credentials checked(Credentials credentials, const std::string& what) {
  if (!plausible(credentials.access_key_id, 128) ||
      !plausible(credentials.secret_access_key, 256) ||
      !plausible(credentials.session_token, kMaxSessionToken))
    throw Error(what + " holds no usable temporary keys");
  return credentials;
}

void assume_web_identity(AwsSettings& settings,
                         const std::function<void(const std::string&)>& say) {
  Credentials& credentials = settings.credentials;
  const fs::path token_file = credentials.web_identity_token_file;
  std::error_code ec;
  if (!fs::is_regular_file(token_file, ec))
    throw Error("the web identity token file " + token_file.string() + " does not exist");
  std::string token = read_file_prefix(token_file, kMaxIdentityToken + 1);
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty() || token.size() > kMaxIdentityToken)
    throw Error("the web identity token file " + token_file.string() + " is empty or too large");
  std::string body = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" +
                     form_encode(credentials.role_arn) +
                     "&RoleSessionName=" + form_encode(credentials.role_session_name) +
                     "&WebIdentityToken=" + form_encode(token);
  upload::RestSession session({}, {});
  // Unsigned: the token is the proof of identity.
  auto reply = upload::send_with_retries(session,
                                         {.method = "POST",
                                          .url = settings.endpoint("sts") + "/",
                                          .body = body,
                                          .content_type = "application/x-www-form-urlencoded",
                                          .what = "AssumeRoleWithWebIdentity",
                                          .timeout_seconds = 60},
                                         5, say);
  if (!reply.success()) {
    if (!reply.answered()) throw Error("AssumeRoleWithWebIdentity: " + reply.transport_error);
    auto [code, message] = parse_error(reply.body, "");
    std::string text = fmt::format(
        "AssumeRoleWithWebIdentity for {}: HTTP {}{}{}", credentials.role_arn, reply.status,
        code.empty() ? "" : " " + code, message.empty() ? "" : ": " + message);
    if (reply.status >= 400 && reply.status < 500) throw CloudRefusal(text);
    throw Error(text);
  }
  Credentials fetched = parse_sts_credentials(reply.body);
  fetched.source = fmt::format("{}, role {}", credentials.source, credentials.role_arn);
  credentials = fetched;
}

void fetch_instance_role(AwsSettings& settings,
                         const std::function<void(const std::string&)>& say) {
  Credentials& credentials = settings.credentials;
  const std::string base = credentials.metadata_endpoint;
  upload::RestSession session({}, {});
  // The metadata service answers at once or not at all (not on EC2): short deadlines.
  auto ask = [&](const std::string& method, const std::string& path,
                 std::vector<std::string> headers) {
    auto reply = upload::send_with_retries(session,
                                           {.method = method,
                                            .url = base + path,
                                            .headers = std::move(headers),
                                            .what = "instance metadata " + path,
                                            .timeout_seconds = 5,
                                            .connect_timeout_seconds = 2},
                                           2, say);
    if (!reply.success()) {
      throw Error(fmt::format(
          "no AWS credentials: none in the environment or profile, and the instance metadata "
          "service at {} gave none ({}{}). Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
          "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or a profile",
          base, path,
          reply.answered() ? fmt::format(": HTTP {}", reply.status)
                           : ": " + reply.transport_error));
    }
    return reply.body;
  };
  std::string session_token =
      ask("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds: 21600"});
  if (!plausible(session_token, 1024))
    throw Error("the instance metadata service's token is not one");
  const std::string header = "X-aws-ec2-metadata-token: " + session_token;
  std::string roles = ask("GET", "/latest/meta-data/iam/security-credentials/", {header});
  std::string role = roles.substr(0, roles.find('\n'));
  if (!plausible(role, 128) || !scan::all_of(role, [](char c) {
        return scan::is_alnum(c) || c == '-' || c == '_' || c == '+' || c == '=' || c == ',' ||
               c == '.' || c == '@';
      }))
    throw Error("the instance has no IAM role (instance metadata names none)");
  Credentials fetched = parse_instance_credentials(
      ask("GET", "/latest/meta-data/iam/security-credentials/" + role, {header}));
  fetched.source = fmt::format("the instance role {} (instance metadata)", role);
  credentials = fetched;
}

}  // namespace

Credentials parse_sts_credentials(const std::string& xml) {
  Credentials credentials;
  credentials.access_key_id = xml_value(xml, "AccessKeyId");
  credentials.secret_access_key = xml_value(xml, "SecretAccessKey");
  credentials.session_token = xml_value(xml, "SessionToken");
  return checked(credentials, "STS's answer");
}

Credentials parse_instance_credentials(const std::string& json) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (!doc.is_object()) throw Error("the instance metadata service's credentials are not JSON");
  auto text = [&](const char* key) {
    auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (std::string code = text("Code"); !code.empty() && code != "Success")
    throw Error("the instance metadata service refused credentials: " +
                upload::printable(code, 64));
  Credentials credentials;
  credentials.access_key_id = text("AccessKeyId");
  credentials.secret_access_key = text("SecretAccessKey");
  credentials.session_token = text("Token");
  return checked(credentials, "the instance metadata service's answer");
}

void obtain_credentials(AwsSettings& settings, const std::function<void(const std::string&)>& say) {
  switch (settings.credentials.pending) {
    case Credentials::Pending::none:
      return;
    case Credentials::Pending::web_identity:
      return assume_web_identity(settings, say);
    case Credentials::Pending::instance_role:
      return fetch_instance_role(settings, say);
  }
}

}  // namespace kiln::aws
