// The token's secret never leaves kiln through an error: every join-config error, rendered as
// `kiln stamp` prints it and as the agent reports it, and every agent refusal's banner line.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "builder/join/agent_report.h"
#include "builder/join/join_config.h"
#include "builder/util/files.h"
#include "builder/util/yaml_reader.h"
#include "support/join_config_text.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace {

const std::string kSecret = "0123456789abcdef";
const std::string kToken = "abcdef." + kSecret;

const std::string& kValid = kiln::test::kLabelledJoinConfig;

std::string replace(const std::string& text, const std::string& from, const std::string& to) {
  return kiln::test::replace_once(text, from, to);
}

const std::string kPin = "sha256:c2dc616d061b7a08d6c11e554b7a404ccf673c3d87abe07a56495030c90bda48";

/// One join config per error the parser can give, each holding the token's secret.
std::vector<std::pair<std::string, std::string>> broken_configs() {
  const std::string flow =
      "{\"apiVersion\": \"kiln.dev/v1alpha1\", \"kind\": \"JoinConfig\", "
      "\"controlPlane\": {\"endpoint\": \"https://10.0.2.2:6443\", "
      "\"caCertHash\": \"" +
      kPin + "\"}, \"token\": \"" + kToken + "\", \"expires\": \"2099-11-25T15:00:00Z\"";
  return {
      {"one-line JSON with a typo'd key", flow + ", \"tokn\": 1}"},
      {"one-line JSON with a bad expiry", replace(flow, "2099-11-25T15:00:00Z", "soon") + "}"},
      {"one-line JSON with a bad endpoint",
       replace(flow, "https://10.0.2.2:6443", "ftp://x") + "}"},
      {"one-line JSON with a bad pin", replace(flow, "sha256:c2dc", "sha1:c2dc") + "}"},
      {"one-line JSON with a bad label",
       flow + ", \"node\": {\"labels\": {\"pool\": \"a=b,c=d\"}}}"},
      {"one-line JSON with a bad taint",
       flow + ", \"node\": {\"taints\": [{\"key\": \"x;rm\", \"effect\": \"NoSchedule\"}]}}"},
      {"one-line JSON, invalid", flow + ", \"tokn\": }"},
      {"one-line JSON with wrong apiVersion", replace(flow, "kiln.dev/v1alpha1", "v2") + "}"},
      {"typo'd key beside the token", replace(kValid, "expires:", "expirs:")},
      {"typo'd token key", replace(kValid, "token:", "tokn:")},
      {"an upper-case token", replace(kValid, kToken, "ABCDEF.0123456789ABCDEF")},
      {"a token with a trailing character", replace(kValid, kToken, kToken + "x")},
      {"trailing whitespace inside the quoted token",
       replace(kValid, "token: " + kToken, "token: \"" + kToken + "   \"")},
      {"trailing whitespace after a typo'd key", replace(kValid, "expires:", "expirs:   ")},
      {"a token as a key", replace(kValid, "token:", kToken + ": 1\ntoken:")},
      {"token as a list", replace(kValid, "token: " + kToken, "token: [" + kToken + "]")},
      {"token in a flow map", replace(kValid, "token: " + kToken, "token: {t: " + kToken + "}")},
      {"bad endpoint", replace(kValid, "https://10.0.2.2:6443", "http://10.0.2.2:6443")},
      {"100 KB endpoint", replace(kValid, "https://10.0.2.2:6443",
                                  "https://" + std::string(100 * 1024, 'a') + kToken)},
      {"bad caCertHash", replace(kValid, "sha256:c2dc", "sha256:zzzz")},
      {"bad expires", replace(kValid, "2099-11-25T15:00:00Z", kToken)},
      {"bad label value", replace(kValid, "pool: edge", "pool: a=b,c=d")},
      {"bad label key", replace(kValid, "pool: edge", "\"x;rm\": edge")},
      {"bad taint key", replace(kValid, "key: dedicated", "key: \"x;rm -rf\"")},
      {"bad taint value", replace(kValid, "value: edge", "value: a,b")},
      {"bad taint effect", replace(kValid, "effect: NoSchedule", "effect: " + kToken)},
      {"invalid YAML on the token's line",
       replace(kValid, "token: " + kToken, "token: " + kToken + " : ] [")},
      {"invalid YAML", replace(kValid, "node:", "node: [")},
      {"tab-indented", replace(kValid, "  name: tcp-edge", "\tname: tcp-edge")},
      {"not a map", "- " + kToken},
      {"unknown namePolicy", replace(kValid, "node:", "node:\n  namePolicy: " + kToken)},
      {"too large", kValid + "# " + std::string(70 * 1024, 'x') + kToken + "\n"},
      {"bad controlPlane name", replace(kValid, "name: tcp-edge", "name: " + kToken + " X")},
  };
}

void check_clean(const std::string& output) {
  INFO(output.substr(0, 4000));
  CHECK(output.find(kSecret) == std::string::npos);
  CHECK(output.find("0123456789ABCDEF") == std::string::npos);
}

}  // namespace

TEST_CASE("no join-config error renders the token's secret") {
  for (const auto& [what, text] : broken_configs()) {
    INFO(what);
    CHECK_THROWS_AS(kiln::parse_join_config(text, "join.yaml"), kiln::ParseErrors);
    try {
      kiln::parse_join_config(text, "join.yaml");
    } catch (const kiln::ParseErrors& e) {
      check_clean(e.render_all());
      check_clean(e.what());
      for (const auto& error : e.errors()) check_clean(error.source_line());
    }
  }
}

TEST_CASE("kiln stamp prints no token secret for any join-config error") {
  kiln::test::TempDir dir;
  for (const auto& [what, text] : broken_configs()) {
    INFO(what);
    kiln::write_file_atomic(dir.path() / "join.yaml", text, 0600);
    auto result = kiln::test::run_command(std::string(KILN_BINARY) + " stamp " +
                                          (dir.path() / "missing.raw").string() + " --join " +
                                          (dir.path() / "join.yaml").string());
    CHECK(result.exit_code != 0);
    CHECK(result.output.find("join.yaml") != std::string::npos);  // it did report the config
    check_clean(result.output);
  }
}

TEST_CASE("a rendered error quotes the source line with every token-shaped text masked") {
  // One-line JSON: the typo'd key's line is the whole config, token included.
  const std::string flow = "{\"token\": \"" + kToken + "\", \"tokn\": 1}";
  try {
    kiln::parse_join_config(flow, "join.yaml");
    FAIL("no error");
  } catch (const kiln::ParseErrors& e) {
    std::string rendered = e.render_all();
    CHECK(rendered.find("{\"token\": \"***********************\", \"tokn\": 1}") !=
          std::string::npos);
  }
}

TEST_CASE("the value of a token key is masked whatever its shape") {
  CHECK(kiln::mask_key_value("token: ABC.secret   ", "token") == "token: **********   ");
  CHECK(kiln::mask_key_value("{\"token\": \"x,y\", \"a\": 1}", "token") ==
        "{\"token\": \"*,y\", \"a\": 1}");
  CHECK(kiln::mask_bootstrap_tokens("t=abcdef.0123456789abcdef.") == "t=abcdef.****************.");
  CHECK(kiln::mask_bootstrap_tokens("ABCDEF.0123456789ABCDEF") == "ABCDEF.****************");
  CHECK(kiln::Error("token abcdef.0123456789abcdef").what() ==
        std::string("token abcdef.****************"));
}

TEST_CASE("the login banner gives a fixed reason for every agent outcome, never error text") {
  using kiln::AgentOutcome;
  kiln::BannerFacts facts{.target = "tcp-edge",
                          .node = "node-1",
                          .when = "2026-11-25T17:04:10Z",
                          .record = "joined tcp-edge as node-1 at 2026-11-25T17:04:10Z"};
  CHECK(kiln::banner_line(AgentOutcome::config_invalid, facts) ==
        "kiln: refusing to join: the join config is malformed (details: journalctl -u "
        "kiln-firstboot)");
  CHECK(kiln::banner_line(AgentOutcome::token_expired, facts) ==
        "kiln: refusing to join tcp-edge: the bootstrap token has expired (details: journalctl "
        "-u kiln-firstboot)");
  facts.discovery = kiln::DiscoveryFailure::ca_mismatch;
  CHECK(kiln::banner_line(AgentOutcome::discovery_refused, facts) ==
        "kiln: refusing to join tcp-edge: the control plane's CA does not match the pinned CA "
        "(details: journalctl -u kiln-firstboot)");
  CHECK(kiln::banner_line(AgentOutcome::joined, facts) ==
        "kiln: joined tcp-edge as node-1 at 2026-11-25T17:04:10Z");
  for (auto failure : {kiln::DiscoveryFailure::unreachable, kiln::DiscoveryFailure::no_cluster_info,
                       kiln::DiscoveryFailure::token_unknown, kiln::DiscoveryFailure::bad_signature,
                       kiln::DiscoveryFailure::ca_mismatch, kiln::DiscoveryFailure::tls_mismatch}) {
    facts.discovery = failure;
    for (int outcome = 0; outcome <= int(AgentOutcome::failed); ++outcome) {
      std::string line = kiln::banner_line(AgentOutcome(outcome), facts);
      INFO(line);
      CHECK(line.rfind("kiln: ", 0) == 0);
      CHECK(line.find('\n') == std::string::npos);
      check_clean(line);
    }
  }
  // Even a name that slipped past validation cannot carry the secret onto the banner.
  facts.target = kToken;
  check_clean(kiln::banner_line(AgentOutcome::token_expired, facts));
}
