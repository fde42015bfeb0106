// How kiln upload openstack finds its cloud (clouds.yaml, secure.yaml, OS_* variables), what
// it asks Keystone and Glance, and the bounded readers of their answers.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "builder/upload/glance.h"
#include "builder/upload/keystone.h"
#include "builder/upload/openstack_settings.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "support/temp_dir.h"

namespace {

using kiln::openstack::resolve_cloud;
using json = nlohmann::json;

kiln::Environment env_of(std::map<std::string, std::string> values) {
  return [values](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

std::string error_of(const std::string& cloud, const kiln::Environment& env) {
  try {
    resolve_cloud(cloud, env);
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "";
}

const char* kCloudsYaml = R"(clouds:
  ops:
    auth:
      auth_url: https://keystone.example:5000/v3
      username: builder
      project_name: images
      user_domain_name: Corp
    region_name: RegionTwo
    interface: internalURL
    regions: [RegionOne, RegionTwo]
  appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://keystone.example:5000
      application_credential_id: 0123abcd
    verify: false
  direct:
    auth_type: none
    auth:
      endpoint: http://glance.local:9292/
)";

}  // namespace

TEST_CASE("an OpenStack cloud comes from clouds.yaml with secure.yaml's secrets merged over it") {
  kiln::test::TempDir home;
  kiln::write_file_atomic(home.path() / ".config/openstack/clouds.yaml", kCloudsYaml);
  kiln::write_file_atomic(
      home.path() / ".config/openstack/secure.yaml",
      "clouds:\n  ops:\n    auth:\n      password: s3cret-pw\n"
      "  appcred:\n    auth:\n      application_credential_secret: ac-secret\n");
  auto env = env_of({{"HOME", home.path().string()}, {"OS_CLOUD", "ops"}});
  auto ops = resolve_cloud("", env);
  CHECK(ops.source.find("cloud 'ops' in ") == 0);
  CHECK(ops.auth.type == "password");
  CHECK(ops.auth.password == "s3cret-pw");
  CHECK(ops.auth.user_domain_name == "Corp");
  CHECK(ops.auth.project_domain_id == "default");  // a project by name, no domain given
  CHECK(ops.region == "RegionTwo");
  CHECK(ops.interface == "internal");
  CHECK(ops.verify);

  auto appcred = resolve_cloud("appcred", env);  // --cloud wins over OS_CLOUD
  CHECK(appcred.auth.type == "v3applicationcredential");
  CHECK(appcred.auth.application_credential_secret == "ac-secret");
  CHECK_FALSE(appcred.verify);

  auto direct = resolve_cloud("direct", env);
  CHECK(direct.auth.type == "none");
  CHECK(kiln::openstack::image_api_base(direct.auth.endpoint) == "http://glance.local:9292/v2");

  // OS_CLIENT_CONFIG_FILE is looked at first.
  kiln::write_file_atomic(home.path() / "other.yaml",
                          "clouds:\n  ops:\n    auth_type: none\n    image_endpoint_override: "
                          "http://other:9292/v2.1\n");
  auto other = resolve_cloud(
      "ops", env_of({{"HOME", home.path().string()},
                     {"OS_CLIENT_CONFIG_FILE", (home.path() / "other.yaml").string()}}));
  CHECK(other.auth.type == "none");
  CHECK(kiln::openstack::image_api_base(other.image_endpoint_override) == "http://other:9292/v2");
}

TEST_CASE("a cloud without what its auth type needs is refused, naming the gap, not a secret") {
  kiln::test::TempDir home;
  kiln::write_file_atomic(home.path() / ".config/openstack/clouds.yaml", kCloudsYaml);
  auto env = env_of({{"HOME", home.path().string()}});
  std::string missing = error_of("ops", env);
  CHECK(missing.find("cloud 'ops' in ") == 0);
  CHECK(missing.find("password (OS_PASSWORD) is missing") != std::string::npos);
  CHECK(error_of("nope", env).find("has no cloud named 'nope'") != std::string::npos);
  CHECK(error_of("", env).find("no OpenStack cloud given") == 0);
  // A dry run does not need the secret.
  CHECK_NOTHROW(resolve_cloud("ops", env, false));

  kiln::write_file_atomic(home.path() / "bad.yaml", "clouds:\n  x: [unclosed\n");
  std::string syntax =
      error_of("x", env_of({{"HOME", home.path().string()},
                            {"OS_CLIENT_CONFIG_FILE", (home.path() / "bad.yaml").string()}}));
  CHECK(syntax.find("bad.yaml:") != std::string::npos);

  auto partial = env_of({{"OS_AUTH_URL", "https://k:5000/v3"},
                         {"OS_USERNAME", "u"},
                         {"OS_PASSWORD", "do-not-print"}});
  std::string no_project = error_of("", partial);
  CHECK(no_project.find("project_name or project_id") != std::string::npos);
  CHECK(no_project.find("do-not-print") == std::string::npos);
  CHECK(error_of("", env_of({{"OS_AUTH_TYPE", "saml2"}, {"OS_AUTH_URL", "https://k"}}))
            .find("auth_type 'saml2' is not one kiln supports") != std::string::npos);
}

TEST_CASE("OS_* variables of an openrc file describe a cloud when no clouds.yaml entry is named") {
  auto settings = resolve_cloud("", env_of({{"OS_AUTH_URL", "https://k:5000/v3/"},
                                            {"OS_USERNAME", "u"},
                                            {"OS_PASSWORD", "p"},
                                            {"OS_TENANT_NAME", "legacy"},
                                            {"OS_DOMAIN_NAME", "Corp"},
                                            {"OS_REGION_NAME", "R1"},
                                            {"OS_INSECURE", "true"},
                                            {"OS_CACERT", "/etc/ca.pem"}}));
  CHECK(settings.source == "OS_* variables");
  CHECK(settings.auth.project_name == "legacy");
  CHECK(settings.auth.user_domain_name == "Corp");
  CHECK(settings.auth.project_domain_name == "Corp");
  CHECK(settings.region == "R1");
  CHECK_FALSE(settings.verify);
  CHECK(settings.ca_file == "/etc/ca.pem");
  auto token = resolve_cloud("", env_of({{"OS_AUTH_URL", "https://k"}, {"OS_TOKEN", "t"}}));
  CHECK(token.auth.type == "token");
}

TEST_CASE("Keystone's token request carries the method's identity, scoped where it may be") {
  kiln::openstack::Auth password;
  password.type = "password";
  password.username = "builder";
  password.user_domain_name = "Corp";
  password.password = "pw";
  password.project_name = "images";
  password.project_domain_id = "default";
  auto body = json::parse(kiln::openstack::token_request_body(password, false));
  CHECK(body["auth"]["identity"]["methods"] == json::array({"password"}));
  CHECK(body["auth"]["identity"]["password"]["user"]["password"] == "pw");
  CHECK(body["auth"]["identity"]["password"]["user"]["domain"]["name"] == "Corp");
  CHECK(body["auth"]["scope"]["project"]["name"] == "images");
  CHECK(body["auth"]["scope"]["project"]["domain"]["id"] == "default");
  auto shown = kiln::openstack::token_request_body(password, true);
  CHECK(shown.find("\"pw\"") == std::string::npos);
  CHECK(shown.find("<secret>") != std::string::npos);

  kiln::openstack::Auth credential;
  credential.type = "v3applicationcredential";
  credential.application_credential_id = "abc";
  credential.application_credential_secret = "s";
  credential.project_name = "ignored";
  body = json::parse(kiln::openstack::token_request_body(credential, false));
  CHECK(body["auth"]["identity"]["application_credential"]["id"] == "abc");
  CHECK_FALSE(body["auth"].contains("scope"));  // Keystone refuses a scope here
}

TEST_CASE("the image endpoint is the catalog's image service on the interface and region asked") {
  json doc = {{"token",
               {{"catalog",
                 {{{"type", "identity"}, {"endpoints", json::array()}},
                  {{"type", "image"},
                   {"endpoints",
                    {{{"interface", "public"}, {"region_id", "R1"}, {"url", "https://g1:9292"}},
                     {{"interface", "internal"}, {"region_id", "R2"}, {"url", "http://g2i"}},
                     {{"interface", "public"}, {"region_id", "R2"}, {"url", "https://g2"}}}}}}}}}};
  using kiln::openstack::image_endpoint_from_catalog;
  CHECK(image_endpoint_from_catalog(doc.dump(), "public", "") == "https://g1:9292");
  CHECK(image_endpoint_from_catalog(doc.dump(), "public", "R2") == "https://g2");
  CHECK(image_endpoint_from_catalog(doc.dump(), "internal", "R2") == "http://g2i");
  CHECK_THROWS_WITH(image_endpoint_from_catalog(doc.dump(), "public", "R3"),
                    Catch::Contains("no public image endpoint in region 'R3' (it has: R1, R2)"));
  CHECK_THROWS_WITH(image_endpoint_from_catalog(R"({"token":{}})", "public", ""),
                    Catch::Contains("no service catalog"));
  CHECK_THROWS(image_endpoint_from_catalog("not json", "public", ""));
  CHECK(kiln::openstack::image_api_base("https://g/image/") == "https://g/image/v2");
  CHECK(kiln::openstack::image_api_base("https://g/v2/") == "https://g/v2");
  kiln::openstack::Auth auth;
  auth.auth_url = "https://k:5000/";
  CHECK(kiln::openstack::identity_url(auth) == "https://k:5000/v3");
  auth.auth_url = "https://k:5000/v3/";
  CHECK(kiln::openstack::identity_url(auth) == "https://k:5000/v3");
}

TEST_CASE("OpenStack's error answers are read as the service's own words, bounded") {
  using kiln::openstack::error_text;
  CHECK(error_text(R"({"error":{"code":401,"title":"Unauthorized","message":"The request )"
                   R"(you have made requires authentication."}})") ==
        "Unauthorized: The request you have made requires authentication.");
  CHECK(error_text("<html>\n <head>\n  <title>409 Conflict</title>\n </head>\n <body>\n  "
                   "<h1>409 Conflict</h1>\n  Image name taken.<br /><br />\n </body>\n</html>") ==
        "409 Conflict 409 Conflict Image name taken.");
  CHECK(error_text(std::string(100000, 'x')).size() <= 304);
}

TEST_CASE("Glance's image documents are read with ids and digests checked") {
  using kiln::openstack::parse_image;
  auto image = parse_image(
      R"({"id":"1b2c-3d","status":"active","checksum":"0123456789abcdef0123456789abcdef",)"
      R"("os_hash_algo":"sha512","os_hash_value":"ab12","size":42,)"
      R"("hw_firmware_type":"uefi","min_disk":3})");
  REQUIRE(image);
  CHECK(image->status == "active");
  CHECK(image->size == 42);
  CHECK(image->properties.at("hw_firmware_type") == "uefi");
  CHECK_FALSE(parse_image(R"({"id":"../etc","status":"active"})"));
  CHECK_FALSE(parse_image(R"({"id":"a","checksum":"not-hex"})"));
  CHECK_FALSE(parse_image("[]"));
  auto list = kiln::openstack::parse_image_list(R"({"images":[{"id":"a"},{"id":"b c"},7]})");
  REQUIRE(list.size() == 1);
  CHECK(list[0].id == "a");

  kiln::openstack::ImageRequest request{.name = "w",
                                        .disk_format = "qcow2",
                                        .min_disk_gib = 3,
                                        .properties = {{"hw_firmware_type", "uefi"}}};
  auto body = json::parse(kiln::openstack::create_image_body(request));
  CHECK(body["min_disk"] == 3);
  CHECK(body["container_format"] == "bare");
  CHECK(body["hw_firmware_type"] == "uefi");
}
