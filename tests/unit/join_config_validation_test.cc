// Join configs are untrusted input (a node reads them from cloud user data): endpoints are
// checked in one bounded pass, the file's size is capped, and labels and taints follow
// Kubernetes' rules before they reach the kubelet's --node-labels.
#include <catch2/catch.hpp>
#include <string>

#include "builder/join/join_config.h"
#include "builder/join/kubeadm_join.h"
#include "support/join_config_text.h"

namespace {

const std::string& kValid = kiln::test::kLabelledJoinConfig;

std::string replace(const std::string& text, const std::string& from, const std::string& to) {
  return kiln::test::replace_once(text, from, to);
}

/// Every error, rendered, first lines only.
std::string errors_of(const std::string& text) {
  try {
    kiln::parse_join_config(text, "join.yaml");
  } catch (const kiln::ParseErrors& e) {
    std::string out;
    for (const auto& error : e.errors()) {
      std::string rendered = error.render();
      out += rendered.substr(0, rendered.find('\n')) + "\n";
    }
    return out;
  }
  return "no error";
}

}  // namespace

TEST_CASE("a very long endpoint is refused cleanly, named but not printed whole") {
  // 100 KB: over the size cap, refused before parsing; 60 KB: refused by the endpoint check.
  std::string endpoint = "https://" + std::string(100 * 1024, 'a') + ":6443";
  CHECK_FALSE(kiln::is_api_server_url(endpoint));
  std::string config = replace(kValid, "https://10.0.2.2:6443", endpoint);
  CHECK(errors_of(config) ==
        "join.yaml:1:1: error: a join config is at most 65536 bytes; this "
        "one is " +
            std::to_string(config.size()) + "\n");
  endpoint = "https://" + std::string(60 * 1024, 'a') + ":6443";
  CHECK(errors_of(replace(kValid, "https://10.0.2.2:6443", endpoint)) ==
        "join.yaml:5:13: error: endpoint 'https://" + std::string(72, 'a') +
            "...' (61453 characters) must be an https:// URL of the API server\n");
}

TEST_CASE("a join config larger than 64 KiB is refused before parsing") {
  std::string big = kValid + "# " + std::string(64 * 1024, 'x') + "\n";
  CHECK(errors_of(big) ==
        "join.yaml:1:1: error: a join config is at most 65536 bytes; this one is " +
            std::to_string(big.size()) + "\n");
}

TEST_CASE("endpoints are https://host[:port][/] with a valid host and port") {
  for (const char* good :
       {"https://10.0.2.2:6443", "https://tcp.example.com", "https://a:1/",
        "https://[fd00::1]:6443", "https://[::1]", "https://Api-1.example:65535"}) {
    INFO(good);
    CHECK(kiln::is_api_server_url(good));
  }
  for (const char* bad :
       {"http://10.0.2.2:6443", "https://", "https://:6443", "https://a:0", "https://a:65536",
        "https://a:99999999", "https://a:", "https://a/path", "https://a b", "https://-a",
        "https://a..b", "https://[fd00::1", "https://[fd00::1]x", "https://a:6443:1",
        "https://user@a", "https://a?x=1"}) {
    INFO(bad);
    CHECK_FALSE(kiln::is_api_server_url(bad));
  }
  CHECK_FALSE(kiln::is_api_server_url("https://" + std::string(2041, 'a')));
}

TEST_CASE(
    "label values that would smuggle more labels or shell text are refused at file:line:col") {
  CHECK(errors_of(replace(kValid, "pool: edge", "pool: a=b,c=d")) ==
        "join.yaml:11:11: error: label 'pool': the value may hold only letters, digits, '-', '_' "
        "and '.'\n");
  CHECK(errors_of(replace(kValid, "pool: edge", "\"x;rm\": edge")) ==
        "join.yaml:11:5: error: label 'x;rm': the key's name may hold only letters, digits, '-', "
        "'_' and '.'\n");
  CHECK(errors_of(replace(kValid, "pool: edge", "pool: " + std::string(64, 'a'))) ==
        "join.yaml:11:11: error: label 'pool': the value is 64 characters; at most 63\n");
  CHECK(errors_of(replace(kValid, "pool: edge", "Example.com/pool: edge")) ==
        "join.yaml:11:5: error: label 'Example.com/pool': the key's prefix must be a DNS "
        "subdomain (lower case, at most 253 characters)\n");
  CHECK(errors_of(replace(kValid, "pool: edge", "pool: -edge")) ==
        "join.yaml:11:11: error: label 'pool': the value must start and end with a letter or "
        "digit\n");
  CHECK(errors_of(replace(kValid, "key: dedicated", "key: a,b")) ==
        "join.yaml:13:12: error: taint key 'a,b': the key's name may hold only letters, digits, "
        "'-', '_' and '.'\n");
  CHECK(errors_of(replace(kValid, "value: edge", "value: x=y")) ==
        "join.yaml:14:14: error: taint 'dedicated': the value may hold only letters, digits, "
        "'-', '_' and '.'\n");
  CHECK(errors_of(replace(kValid, "effect: NoSchedule", "effect: NoSchedule\n      efect: x")) ==
        "join.yaml:16:7: error: unknown key 'efect' in 'taint' (did you mean 'effect'?)\n");
}

TEST_CASE("valid Kubernetes labels pass and reach --node-labels unchanged") {
  std::string text = replace(kValid, "pool: edge",
                             "pool: edge\n    node.kubernetes.io/zone: eu-1_a.b\n    empty: \"\"");
  kiln::JoinConfig config = kiln::parse_join_config(text, "join.yaml");
  std::string rendered =
      kiln::render_kubeadm_join_configuration(config, "node-1", kiln::Version{1, 34, 0});
  CHECK(rendered.find("\"empty=,node.kubernetes.io/zone=eu-1_a.b,pool=edge\"") !=
        std::string::npos);
  config.labels["bad"] = "a,b=c";
  CHECK_THROWS_WITH(
      kiln::render_kubeadm_join_configuration(config, "node-1", kiln::Version{1, 34, 0}),
      "label 'bad' is not a valid Kubernetes label");
}
