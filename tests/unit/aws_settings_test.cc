// How kiln upload aws finds credentials, region and endpoints (the SDKs' order), and the
// small parsers of its journal and of AWS's error answers.
#include "builder/upload/aws_settings.h"

#include <catch2/catch.hpp>

#include "builder/upload/aws_client.h"
#include "builder/upload/ebs_snapshot.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "support/temp_dir.h"

namespace {

kiln::aws::Environment env_of(std::map<std::string, std::string> values) {
  return [values](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

std::string error_of(const kiln::aws::AwsOptions& options, const kiln::aws::Environment& env) {
  try {
    kiln::aws::resolve_settings(options, env);
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("AWS credentials come from the environment first, then the profile's files") {
  kiln::test::TempDir home;
  kiln::write_file_atomic(home.path() / ".aws/credentials",
                          "[default]\naws_access_key_id = AKIADEFAULT\n"
                          "aws_secret_access_key = default-secret\n\n"
                          "[ops]\naws_access_key_id=AKIAOPS  # the ops account\n"
                          "aws_secret_access_key=ops-secret\naws_session_token=ops-token\n");
  kiln::write_file_atomic(
      home.path() / ".aws/config",
      "[default]\nregion = us-east-1\n[profile ops]\nregion = eu-central-1\n"
      "endpoint_url = http://127.0.0.1:4566/\ns3 =\n  addressing_style = path\n");
  std::map<std::string, std::string> vars = {{"HOME", home.path().string()}};

  auto from_profile = kiln::aws::resolve_settings({}, env_of(vars));
  CHECK(from_profile.credentials.access_key_id == "AKIADEFAULT");
  CHECK(from_profile.region == "us-east-1");
  CHECK(from_profile.endpoint("ebs") == "https://ebs.us-east-1.amazonaws.com");

  vars["AWS_PROFILE"] = "ops";
  auto ops = kiln::aws::resolve_settings({}, env_of(vars));
  CHECK(ops.credentials.access_key_id == "AKIAOPS");
  CHECK(ops.credentials.secret_access_key == "ops-secret");
  CHECK(ops.credentials.session_token == "ops-token");
  CHECK(ops.credentials.source.find("profile ops") == 0);
  CHECK(ops.region == "eu-central-1");
  CHECK(ops.endpoint("ec2") == "http://127.0.0.1:4566");

  vars["AWS_ACCESS_KEY_ID"] = "AKIAENV";
  vars["AWS_SECRET_ACCESS_KEY"] = "env-secret";
  vars["AWS_REGION"] = "ap-south-1";
  vars["AWS_ENDPOINT_URL_EBS"] = "http://ebs.local:9000";
  auto env = kiln::aws::resolve_settings({.region = "sa-east-1"}, env_of(vars));
  CHECK(env.credentials.access_key_id == "AKIAENV");
  CHECK(env.credentials.session_token.empty());
  CHECK(env.region == "sa-east-1");  // --region beats AWS_REGION
  CHECK(env.endpoint("ebs") == "http://ebs.local:9000");
  CHECK(env.endpoint("ec2") == "http://127.0.0.1:4566");  // the profile's, for the others
}

TEST_CASE("missing AWS settings are named, and no secret is ever part of a message") {
  kiln::test::TempDir home;
  std::map<std::string, std::string> vars = {{"HOME", home.path().string()},
                                             {"AWS_REGION", "eu-west-1"},
                                             {"AWS_EC2_METADATA_DISABLED", "true"}};
  CHECK_THAT(error_of({}, env_of(vars)),
             Catch::StartsWith("no AWS credentials: set AWS_ACCESS_KEY_ID and "
                               "AWS_SECRET_ACCESS_KEY"));
  // A dry run needs none.
  CHECK(error_of({.need_credentials = false}, env_of(vars)).empty());
  vars["AWS_ACCESS_KEY_ID"] = "AKIAHALF";
  CHECK(error_of({}, env_of(vars)) == "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
  vars["AWS_SECRET_ACCESS_KEY"] = "very-secret-value";
  vars["AWS_REGION"] = "eu west";
  std::string bad_region = error_of({}, env_of(vars));
  CHECK(bad_region == "bad AWS region 'eu west' (from AWS_REGION)");
  CHECK(bad_region.find("very-secret-value") == std::string::npos);
  vars.erase("AWS_REGION");
  CHECK_THAT(error_of({}, env_of(vars)), Catch::StartsWith("no AWS region: give --region"));
}

TEST_CASE("an upload journal cut short by a crash keeps only its complete lines") {
  auto journal = kiln::aws::parse_journal(
      "token 0a1b\nsnapshot snap-0123\nblock 7 aGFzaA==\nblock x bad\nblock 12 c3Vt\nblock 1");
  CHECK(journal.client_token == "0a1b");
  CHECK(journal.snapshot_id == "snap-0123");
  CHECK(journal.blocks == std::map<std::uint64_t, std::string>{{7, "aGFzaA=="}, {12, "c3Vt"}});
  CHECK_FALSE(journal.completed);
  CHECK(kiln::aws::parse_journal("snapshot snap-1\ncompleted\nimage ami-2\n").image_id == "ami-2");
  // --public-regions' steps: each copy, and each region where the image was made public.
  auto published = kiln::aws::parse_journal(
      "image ami-2\ncopy us-east-2 ami-3\ncopy nospace\npublic eu-west-1\npublic us-east-2");
  CHECK(published.copies == std::map<std::string, std::string>{{"us-east-2", "ami-3"}});
  CHECK(published.public_in == std::set<std::string>{"eu-west-1"});  // the last line was cut
}

TEST_CASE("AWS's error answers give their code and message, in XML, JSON or a header") {
  auto ec2 = kiln::aws::parse_error(
      "<Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate "
      "the provided access credentials</Message></Error></Errors></Response>",
      "");
  CHECK(ec2.first == "AuthFailure");
  CHECK(ec2.second == "AWS was not able to validate the provided access credentials");
  auto ebs = kiln::aws::parse_error(R"({"message":"The snapshot is not pending","Reason":"x"})",
                                    "ValidationException:http://internal.amazon.com/x");
  CHECK(ebs.first == "ValidationException");
  CHECK(ebs.second == "The snapshot is not pending");
  auto typed = kiln::aws::parse_error(R"({"__type":"com.amazon#ThrottlingException"})", "");
  CHECK(typed.first == "ThrottlingException");
  CHECK(kiln::aws::retryable({.status = 400, .error = "x", .error_code = "ThrottlingException"}));
  CHECK_FALSE(kiln::aws::retryable({.status = 403, .error = "x", .error_code = "AuthFailure"}));
  CHECK(kiln::aws::retryable({.status = 0, .error = "connection reset"}));
}

TEST_CASE("without keys, AWS credentials come from a web identity, else from the instance role") {
  kiln::test::TempDir home;
  std::map<std::string, std::string> vars = {{"HOME", home.path().string()},
                                             {"AWS_REGION", "eu-west-1"},
                                             {"AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"},
                                             {"AWS_ROLE_ARN", "arn:aws:iam::1:role/builder"}};
  using Pending = kiln::aws::Credentials::Pending;
  auto web = kiln::aws::resolve_settings({}, env_of(vars)).credentials;
  CHECK(web.pending == Pending::web_identity);
  CHECK(web.role_arn == "arn:aws:iam::1:role/builder");
  CHECK(web.role_session_name == "kiln-upload");
  CHECK(web.source == "a web identity (AWS_WEB_IDENTITY_TOKEN_FILE)");
  vars.erase("AWS_ROLE_ARN");
  CHECK_THAT(error_of({}, env_of(vars)), Catch::Contains("no role to assume"));
  // Keys in the environment win over a web identity.
  vars["AWS_ACCESS_KEY_ID"] = "AKIAENV";
  vars["AWS_SECRET_ACCESS_KEY"] = "s";
  CHECK(kiln::aws::resolve_settings({}, env_of(vars)).credentials.pending == Pending::none);

  // The profile may name the web identity too.
  kiln::write_file_atomic(home.path() / ".aws/config",
                          "[profile ci]\nweb_identity_token_file = /t\nrole_arn = arn:r\n"
                          "role_session_name = run-7\n");
  auto profile = kiln::aws::resolve_settings(
      {.profile = "ci"}, env_of({{"HOME", home.path().string()}, {"AWS_REGION", "eu-west-1"}}));
  CHECK(profile.credentials.pending == Pending::web_identity);
  CHECK(profile.credentials.role_session_name == "run-7");

  auto instance = kiln::aws::resolve_settings(
      {}, env_of({{"HOME", home.path().string()},
                  {"AWS_REGION", "eu-west-1"},
                  {"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1338/"}}));
  CHECK(instance.credentials.pending == Pending::instance_role);
  CHECK(instance.credentials.metadata_endpoint == "http://127.0.0.1:1338");
}
