// kiln token create and kiln's token discovery against a real control plane: etcd,
// kube-apiserver and kube-controller-manager of the image's Kubernetes version, initialised
// with kubeadm's phases as Kamaji does (tests/cluster/control-plane.sh, a CTest fixture).
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "builder/fetch/http.h"
#include "builder/join/ca_pin.h"
#include "builder/join/discovery.h"
#include "builder/join/join_config.h"
#include "builder/join/kubeadm_join.h"
#include "builder/join/kubeconfig.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/time.h"
#include "firstboot/https_client.h"
#include "support/control_plane.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

using kiln::test::admin_get;
using kiln::test::cp;

using Run = kiln::test::CommandResult;
Run run_shell(const std::string& command) {
  return kiln::test::run_command(command);
}

long long now() {
  return kiln::unix_now();
}

/// A join config from `kiln token create` against the test control plane (reached on loopback).
kiln::JoinConfig created_token(const fs::path& dir, const std::string& extra = "") {
  Run run =
      run_shell(std::string(KILN_BINARY) + " token create --kubeconfig " + cp("ADMIN_KUBECONFIG") +
                " --endpoint " + cp("API_URL") + " --ttl 30m --labels pool=edge,tier=test -o " +
                (dir / "join.yaml").string() + " " + extra);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  return kiln::load_join_config(dir / "join.yaml");
}

/// Discovery, retried while bootstrapsigner has not yet signed cluster-info for a new token.
kiln::DiscoveredCluster discover_when_signed(const kiln::JoinConfig& config) {
  for (int attempt = 0;; ++attempt) {
    try {
      return kiln::discover_cluster(config);
    } catch (const kiln::DiscoveryError& e) {
      if (e.failure() != kiln::DiscoveryFailure::token_unknown || attempt >= 60) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
}

/// Both HTTPS transports discovery runs over: libcurl in the CLI, the first-boot agent's own
/// OpenSSL client.
kiln::HttpTransport transport_named(const std::string& name) {
  return name == "agent" ? kiln::HttpTransport(kiln::firstboot::request)
                         : kiln::HttpTransport(kiln::http::request);
}

}  // namespace

TEST_CASE("kiln token create makes a bootstrap token kubeadm recognises and a 0600 join config",
          "[cluster]") {
  kiln::test::TempDir dir;
  kiln::JoinConfig config = created_token(dir.path());
  struct stat st {};
  REQUIRE(::stat((dir.path() / "join.yaml").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(config.endpoint == cp("API_URL"));
  CHECK(config.labels.at("pool") == "edge");
  CHECK(config.expires > now() + 29 * 60);
  CHECK(config.expires <= now() + 30 * 60);

  // The Secret is what kubeadm itself would have created...
  kiln::http::Response secret =
      admin_get("/api/v1/namespaces/kube-system/secrets/bootstrap-token-" + config.token.id);
  REQUIRE(secret.status == 200);
  CHECK_THAT(secret.body, Catch::Contains("bootstrap.kubernetes.io/token"));
  // ...and the real kubeadm lists it with its usages and group.
  Run list = run_shell(std::string(KILN_CONTROL_PLANE_BIN) + "/kubeadm token list --kubeconfig " +
                       cp("ADMIN_KUBECONFIG"));
  INFO(list.output);
  REQUIRE(list.exit_code == 0);
  std::smatch row;
  REQUIRE(std::regex_search(
      list.output, row,
      std::regex(
          config.token.id +
          R"(\.\S+\s+\S+\s+\S+\s+(\S+)\s+.*(system:bootstrappers:kubeadm:default-node-token))")));
  CHECK(row[1] == "authentication,signing");
  // The secret half never reaches the terminal.
  Run again = run_shell(std::string(KILN_BINARY) + " token create --kubeconfig " +
                        cp("ADMIN_KUBECONFIG") + " -o " + (dir.path() / "second.yaml").string());
  CHECK(again.output.find(kiln::load_join_config(dir.path() / "second.yaml").token.secret) ==
        std::string::npos);
}

TEST_CASE("kiln token create --json prints the join config's facts with the token masked",
          "[cluster]") {
  kiln::test::TempDir dir;
  Run run = kiln::test::run_stdout(std::string(KILN_BINARY) + " token create --kubeconfig " +
                                   cp("ADMIN_KUBECONFIG") + " --name tcp-json --json -o " +
                                   (dir.path() / "join.yaml").string());
  REQUIRE(run.exit_code == 0);
  kiln::write_file_atomic(dir.path() / "token.json", run.output);
  CHECK(run_shell("python3 -m json.tool " + (dir.path() / "token.json").string()).exit_code == 0);
  kiln::JoinConfig config = kiln::load_join_config(dir.path() / "join.yaml");
  auto doc = nlohmann::json::parse(run.output);
  CHECK(doc["schemaVersion"] == 1);
  CHECK(doc["output"] == (dir.path() / "join.yaml").string());
  CHECK(doc["token"] == config.token.masked());
  CHECK(doc["tokenId"] == config.token.id);
  CHECK(doc["controlPlane"] == "tcp-json");
  CHECK(doc["endpoint"] == config.endpoint);
  CHECK(doc["caCertHash"] == config.ca_cert_hash);
  CHECK(doc["expires"] == kiln::format_utc(config.expires));
  CHECK(run.output.find(config.token.secret) == std::string::npos);
}

TEST_CASE("the CA pin kiln computes is the one real kubeadm prints for joining", "[cluster]") {
  kiln::test::TempDir dir;
  kiln::JoinConfig config = created_token(dir.path());
  Run join = run_shell(std::string(KILN_CONTROL_PLANE_BIN) +
                       "/kubeadm token create --print-join-command --kubeconfig " +
                       cp("ADMIN_KUBECONFIG"));
  INFO(join.output);
  REQUIRE(join.exit_code == 0);
  std::smatch match;
  REQUIRE(std::regex_search(join.output, match,
                            std::regex("--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})")));
  CHECK(config.ca_cert_hash == match[1].str());
}

TEST_CASE("discovery verifies bootstrapsigner's signature and the CA pin of the real cluster-info",
          "[cluster]") {
  kiln::test::TempDir dir;
  kiln::JoinConfig config = created_token(dir.path());
  kiln::DiscoveredCluster cluster = discover_when_signed(config);
  CHECK(kiln::ca_pin_from_pem(cluster.ca_pem) == config.ca_cert_hash);
  CHECK(cluster.server == cp("GUEST_API_URL"));  // what nodes will talk to
}

TEST_CASE("discovery refuses a foreign CA, a wrong secret, an unknown token and an absent server",
          "[cluster]") {
  std::string transport_name = GENERATE(as<std::string>{}, "libcurl", "agent");
  kiln::HttpTransport transport = transport_named(transport_name);
  INFO("transport: " << transport_name);
  kiln::test::TempDir dir;
  kiln::JoinConfig good = created_token(dir.path());
  discover_when_signed(good);
  kiln::DiscoveredCluster cluster = kiln::discover_cluster(good, transport, 10);
  CHECK(kiln::ca_pin_from_pem(cluster.ca_pem) == good.ca_cert_hash);
  auto failure_of = [&](const kiln::JoinConfig& config) {
    try {
      kiln::discover_cluster(config, transport, 3);
    } catch (const kiln::DiscoveryError& e) {
      return std::pair{e.failure(), std::string(e.what())};
    }
    FAIL("discovery accepted a control plane it should refuse");
    return std::pair{kiln::DiscoveryFailure::unreachable, std::string()};
  };

  kiln::JoinConfig mitm = good;  // the pin of some other CA: whoever answers is not our cluster
  mitm.ca_cert_hash =
      kiln::ca_pin_from_pem(kiln::read_file(fs::path(KILN_TEST_DATA) / "upstream/rsa-ca.crt"));
  auto [mitm_failure, mitm_message] = failure_of(mitm);
  CHECK(mitm_failure == kiln::DiscoveryFailure::ca_mismatch);
  CHECK_THAT(mitm_message, Catch::Contains("but the join config pins " + mitm.ca_cert_hash));

  kiln::JoinConfig forged = good;  // a signature that does not verify with our secret
  forged.token.secret = "0000000000000000";
  auto [forged_failure, forged_message] = failure_of(forged);
  CHECK(forged_failure == kiln::DiscoveryFailure::bad_signature);
  CHECK_THAT(forged_message, Catch::Contains("the signature does not match this token"));

  kiln::JoinConfig unknown = good;
  unknown.token.id = "zzzzzz";
  CHECK(failure_of(unknown).first == kiln::DiscoveryFailure::token_unknown);

  kiln::JoinConfig nowhere = good;
  nowhere.endpoint = "https://127.0.0.1:1";
  auto [nowhere_failure, nowhere_message] = failure_of(nowhere);
  CHECK(nowhere_failure == kiln::DiscoveryFailure::unreachable);
  CHECK_THAT(nowhere_message, Catch::StartsWith("cannot reach https://127.0.0.1:1"));

  kiln::JoinConfig expired = good;
  expired.expires = now() - 600;
  CHECK_THROWS_WITH(
      kiln::check_not_expired(expired, now()),
      Catch::Contains("expired at " + kiln::format_utc(expired.expires) + " (10 minutes ago)"));
}

TEST_CASE("the API server's refusal reaches the user verbatim", "[cluster]") {
  kiln::test::TempDir dir;
  // A kubeconfig whose user the API server does not know: the admin CA, a made-up token.
  kiln::Kubeconfig admin = kiln::load_kubeconfig(cp("ADMIN_KUBECONFIG"));
  std::string kubeconfig = kiln::read_file(cp("ADMIN_KUBECONFIG"));
  kubeconfig = std::regex_replace(kubeconfig, std::regex("client-certificate-data: \\S+"),
                                  "token: not-a-real-token");
  kubeconfig = std::regex_replace(kubeconfig, std::regex("\\n\\s*client-key-data: \\S+"), "");
  kiln::write_file_atomic(dir.path() / "bad.conf", kubeconfig, 0600);
  Run run =
      run_shell(std::string(KILN_BINARY) + " token create --kubeconfig " +
                (dir.path() / "bad.conf").string() + " -o " + (dir.path() / "join.yaml").string());
  CHECK(run.exit_code == 1);
  CHECK_THAT(run.output, Catch::Contains("refused to create the bootstrap token (HTTP 401)"));
  CHECK_FALSE(fs::exists(dir.path() / "join.yaml"));
}

TEST_CASE("real kubeadm accepts the JoinConfiguration kiln writes for a created token",
          "[cluster]") {
  kiln::test::TempDir dir;
  kiln::JoinConfig config =
      created_token(dir.path(), "--taints dedicated=edge:NoSchedule --kubelet-args max-pods=50");
  std::string version =
      run_shell(std::string(KILN_CONTROL_PLANE_BIN) + "/kubeadm version -o short").output;
  auto parsed = kiln::parse_version(version.substr(0, version.find('\n')));
  REQUIRE(parsed);
  kiln::write_file_atomic(dir.path() / "kubeadm-join.yaml",
                          kiln::render_kubeadm_join_configuration(config, "edge-node-1", *parsed),
                          0600);
  Run validate =
      run_shell(std::string(KILN_CONTROL_PLANE_BIN) + "/kubeadm config validate --config " +
                (dir.path() / "kubeadm-join.yaml").string());
  INFO(validate.output);
  CHECK(validate.exit_code == 0);
  CHECK_THAT(validate.output, Catch::Contains("ok"));
}

TEST_CASE("an unwritable output path is refused before any token exists", "[cluster]") {
  auto token_count = [] {
    Run list = run_shell(std::string(KILN_CONTROL_PLANE_BIN) + "/kubeadm token list --kubeconfig " +
                         cp("ADMIN_KUBECONFIG"));
    REQUIRE(list.exit_code == 0);
    return std::count(list.output.begin(), list.output.end(), '\n');
  };
  auto before = token_count();
  Run run = run_shell(std::string(KILN_BINARY) + " token create --kubeconfig " +
                      cp("ADMIN_KUBECONFIG") + " -o /nonexistent-dir/join.yaml");
  CHECK(run.exit_code == 1);
  CHECK_THAT(run.output,
             Catch::Contains(
                 "cannot write the join config: /nonexistent-dir is not a writable directory"));
  CHECK(token_count() == before);
}

TEST_CASE("a pinned fetch whose connection is never made is retried, not refused", "[cluster]") {
  std::string transport_name = GENERATE(as<std::string>{}, "libcurl", "agent");
  kiln::HttpTransport real = transport_named(transport_name);
  INFO("transport: " << transport_name);
  kiln::test::TempDir dir;
  kiln::JoinConfig good = created_token(dir.path());
  discover_when_signed(good);
  // The anonymous fetch reaches the control plane, then the network goes away before the
  // pinned one (as a netbooted node's does for a moment after switch-root): a closed port
  // stands in for the route that is gone.
  int calls = 0;
  kiln::HttpTransport dropping = [&](const kiln::http::Request& call) {
    if (calls++ == 0) return real(call);
    kiln::http::Request elsewhere = call;
    elsewhere.url = "https://127.0.0.1:1" + call.url.substr(call.url.find("/api/"));
    return real(elsewhere);
  };
  try {
    kiln::discover_cluster(good, dropping, 3);
    FAIL("discovery succeeded without reaching the control plane twice");
  } catch (const kiln::DiscoveryError& e) {
    CHECK(calls == 2);
    CHECK(e.failure() == kiln::DiscoveryFailure::unreachable);
    CHECK_THAT(e.what(), Catch::StartsWith("cannot reach"));
  }
}

TEST_CASE(
    "the agent's client authenticates with a kubelet-style kubeconfig whose certificate "
    "and key share one file",
    "[cluster]") {
  kiln::test::TempDir dir;
  // As kubeadm writes kubelet.conf: both fields name kubelet-client-current.pem, which holds
  // the certificate and the key. The admin's identity stands in for the node's here.
  kiln::Kubeconfig admin = kiln::load_kubeconfig(cp("ADMIN_KUBECONFIG"));
  kiln::write_file_atomic(dir.path() / "client-current.pem",
                          admin.client_cert_pem + admin.client_key_pem, 0600);
  kiln::write_file_atomic(dir.path() / "ca.crt", admin.ca_pem);
  kiln::write_file_atomic(dir.path() / "kubelet.conf", R"(apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: ca.crt
    server: )" + cp("API_URL") + R"(
  name: default-cluster
contexts:
- context:
    cluster: default-cluster
    user: default-auth
  name: default-context
current-context: default-context
users:
- name: default-auth
  user:
    client-certificate: client-current.pem
    client-key: client-current.pem
)",
                          0600);
  kiln::Kubeconfig kubelet = kiln::load_kubeconfig(dir.path() / "kubelet.conf");
  kiln::http::Request request;
  request.url = kubelet.server + "/api/v1/namespaces/kube-system/configmaps/kubeadm-config";
  request.ca_pem = kubelet.ca_pem;
  kiln::http::Response anonymous = kiln::firstboot::request(request);
  INFO(anonymous.error << anonymous.body);
  CHECK(anonymous.status == 403);  // the control plane allows anonymous requests, not this one

  request.client_cert_pem = kubelet.client_cert_pem;
  request.client_key_pem = kubelet.client_key_pem;
  kiln::http::Response authenticated = kiln::firstboot::request(request);
  INFO(authenticated.error << authenticated.body);
  CHECK(authenticated.status == 200);
  CHECK_THAT(authenticated.body, Catch::Contains("ClusterConfiguration"));

  // A key that is not the certificate's is refused before anything is sent.
  std::string foreign_key =
      kiln::run({"openssl", "genpkey", "-algorithm", "ed25519"}, {.capture_stdout = true})
          .stdout_text;
  request.client_key_pem = foreign_key;
  kiln::http::Response mismatched = kiln::firstboot::request(request);
  CHECK(mismatched.status == 0);
  CHECK_THAT(mismatched.error, Catch::Contains("client certificate and key cannot be used"));
}
