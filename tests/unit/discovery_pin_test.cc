// Discovery trusts only what the pin names: a CA appended to cluster-info by someone else who
// holds the token is dropped before the verified fetch, and cluster-info cannot point the node
// at one of its own files.
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "builder/join/agent_report.h"
#include "builder/join/ca_pin.h"
#include "builder/join/discovery.h"
#include "builder/join/jws.h"
#include "builder/util/base64.h"
#include "builder/util/files.h"

namespace fs = std::filesystem;

namespace {

const fs::path kUpstream = fs::path(KILN_TEST_DATA) / "upstream";
const std::string kRsaPin =
    "sha256:c2dc616d061b7a08d6c11e554b7a404ccf673c3d87abe07a56495030c90bda48";

kiln::JoinConfig join_config() {
  kiln::JoinConfig config;
  config.endpoint = "https://10.0.2.2:6443";
  config.ca_cert_hash = kRsaPin;
  config.token = {"abcdef", "0123456789abcdef"};
  config.expires = 4102444800;
  return config;
}

std::string kubeconfig_with(const std::string& cluster_fields) {
  return "apiVersion: v1\nclusters:\n- cluster:\n" + cluster_fields +
         "    server: https://10.0.2.2:6443\n  name: \"\"\ncontexts: null\ncurrent-context: "
         "\"\"\nkind: Config\npreferences: {}\nusers: null\n";
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

/// kube-public/cluster-info as the API server returns it, signed for the token.
std::string cluster_info(const std::string& kubeconfig, const std::string& secret) {
  return "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"data\":{\"kubeconfig\":" +
         json_string(kubeconfig) + ",\"jws-kubeconfig-abcdef\":" +
         json_string(kiln::compute_detached_jws(kubeconfig, "abcdef", secret)) + "}}";
}

/// A transport answering every call with `body`, recording what each call trusted.
struct FakeControlPlane {
  std::string body;
  std::vector<kiln::http::Request> calls;
  kiln::HttpTransport transport() {
    return [this](const kiln::http::Request& call) {
      calls.push_back(call);
      return kiln::http::Response{200, body, "", false};
    };
  }
};

std::string pem_of(const std::string& name) {
  return kiln::read_file(kUpstream / name);
}

}  // namespace

TEST_CASE("only the pinned CA of a cluster-info bundle is trusted for the verified fetch") {
  std::string pinned = pem_of("rsa-ca.crt"), attacker = pem_of("ecdsa-ca.crt");
  std::string bundle = pinned + attacker;
  FakeControlPlane server{cluster_info(
      kubeconfig_with("    certificate-authority-data: " + kiln::base64_encode(bundle) + "\n"),
      "0123456789abcdef")};
  kiln::DiscoveredCluster cluster = kiln::discover_cluster(join_config(), server.transport(), 3);
  REQUIRE(server.calls.size() == 2);
  CHECK(server.calls[0].ca_pem.empty());
  const std::string& trusted = server.calls[1].ca_pem;
  CHECK(kiln::ca_pin_from_pem(trusted) == kRsaPin);
  // Exactly one certificate, the pinned one: the attacker's CA is not in what TLS trusts.
  CHECK(trusted.find("BEGIN CERTIFICATE") == trusted.rfind("BEGIN CERTIFICATE"));
  CHECK(kiln::certificates_matching_pin(attacker, kRsaPin).empty());
  CHECK(cluster.ca_pem == trusted);
}

TEST_CASE("the pinned CA may come after another one in the bundle") {
  std::string bundle = pem_of("ecdsa-ca.crt") + pem_of("rsa-ca.crt");
  std::string kept = kiln::certificates_matching_pin(bundle, kRsaPin);
  CHECK(kiln::ca_pin_from_pem(kept) == kRsaPin);
  CHECK(kept.find("BEGIN CERTIFICATE") == kept.rfind("BEGIN CERTIFICATE"));
}

TEST_CASE("a bundle without the pinned CA is refused as a CA mismatch") {
  FakeControlPlane server{cluster_info(
      kubeconfig_with(
          "    certificate-authority-data: " + kiln::base64_encode(pem_of("ecdsa-ca.crt")) + "\n"),
      "0123456789abcdef")};
  try {
    kiln::discover_cluster(join_config(), server.transport(), 3);
    FAIL("no refusal");
  } catch (const kiln::DiscoveryError& e) {
    CHECK(e.failure() == kiln::DiscoveryFailure::ca_mismatch);
  }
  CHECK(server.calls.size() == 1);  // never fetched again with a CA it does not pin
}

TEST_CASE("cluster-info naming its CA as a file is refused without reading the file") {
  // /dev/zero never ends: reading it would hang the agent.
  FakeControlPlane server{
      cluster_info(kubeconfig_with("    certificate-authority: /dev/zero\n"), "0123456789abcdef")};
  try {
    kiln::discover_cluster(join_config(), server.transport(), 3);
    FAIL("no refusal");
  } catch (const kiln::DiscoveryError& e) {
    CHECK(e.failure() == kiln::DiscoveryFailure::no_cluster_info);
    CHECK(std::string(e.what()) ==
          "cluster-info: the cluster names its CA as a file (certificate-authority); only inline "
          "certificate-authority-data is accepted from a control plane");
  }
  CHECK(server.calls.size() == 1);
}

TEST_CASE("a signed cluster-info whose kubeconfig has the wrong shapes is refused as a discovery error") {
  // Found by fuzzing: a scalar where a map belongs made yaml-cpp throw its own exception out of
  // discovery. Whoever holds the token can sign such a kubeconfig.
  for (std::string kubeconfig :
       {"clusters:\n- cluster: x\n", "clusters:\n- x\n", "clusters: {a: b}\n",
        "clusters:\n- cluster:\n    server: [a]\n", "[1, 2]\n"}) {
    INFO(kubeconfig);
    FakeControlPlane server{cluster_info(kubeconfig, "0123456789abcdef")};
    try {
      kiln::discover_cluster(join_config(), server.transport(), 3);
      FAIL("no refusal");
    } catch (const kiln::DiscoveryError& e) {
      CHECK(e.failure() == kiln::DiscoveryFailure::no_cluster_info);
    }
  }
}

TEST_CASE("no discovery refusal carries the token's secret to the journal or the banner") {
  std::string good_kubeconfig = kubeconfig_with(
      "    certificate-authority-data: " + kiln::base64_encode(pem_of("rsa-ca.crt")) + "\n");
  std::vector<std::pair<std::string, std::string>> bodies = {
      {"bad signature", cluster_info(good_kubeconfig, "ffffffffffffffff")},
      {"pin mismatch",
       cluster_info(kubeconfig_with("    certificate-authority-data: " +
                                    kiln::base64_encode(pem_of("ecdsa-ca.crt")) + "\n"),
                    "0123456789abcdef")},
      {"unknown token", "{\"data\":{\"kubeconfig\":" + json_string(good_kubeconfig) + "}}"},
      {"not JSON", "abcdef.0123456789abcdef"},
      {"CA file",
       cluster_info(kubeconfig_with("    certificate-authority: /dev/zero\n"), "0123456789abcdef")},
  };
  for (const auto& [what, body] : bodies) {
    INFO(what);
    FakeControlPlane server{body};
    try {
      kiln::discover_cluster(join_config(), server.transport(), 3);
      FAIL("no refusal");
    } catch (const kiln::DiscoveryError& e) {
      kiln::BannerFacts facts{.target = "tcp-edge", .discovery = e.failure()};
      std::string reported = std::string(e.what()) + "\n" + e.render() + "\n" +
                             kiln::banner_line(kiln::AgentOutcome::discovery_refused, facts);
      INFO(reported);
      CHECK(reported.find("0123456789abcdef") == std::string::npos);
    }
  }
  kiln::JoinConfig expired = join_config();
  expired.expires = 1;
  try {
    kiln::check_not_expired(expired, 1000);
    FAIL("no refusal");
  } catch (const kiln::Error& e) {
    CHECK(std::string(e.what()).find("0123456789abcdef") == std::string::npos);
  }
}
