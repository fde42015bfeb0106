// libFuzzer harness: token discovery (discover_cluster) on a hostile kube-public/cluster-info,
// which the agent fetches without authenticating the server. A fake transport answers every
// fetch with the input. Two input forms:
//   - the raw response body (a ConfigMap in JSON), signature and all;
//   - "#sign\n" then a kubeconfig, which the harness wraps into a ConfigMap signed with the
//     join config's token, so the fuzzer also reaches what only a signed cluster-info reaches
//     (kubeconfig parsing, the CA pin, the verified refetch).
// The documented refusal is DiscoveryError (a kiln::Error); nothing else may escape, and a
// discovered cluster carries the pinned CA.

#include <cstdint>
#include <string>
#include <string_view>

#include "builder/join/ca_pin.h"
#include "builder/join/discovery.h"
#include "builder/join/jws.h"
#include "fuzz_check.h"
#include "fuzz_input.h"

namespace {

constexpr std::string_view kSignPrefix = "#sign\n";
// The pin of the CA in the seed kubeconfigs (tests/fuzz/corpus/cluster_info).
constexpr const char* kPin =
    "sha256:067b88d87633ec42e1e597f653a4f992fa90ccb09a3a06f470247d77f0724003";

kiln::JoinConfig join_config() {
  kiln::JoinConfig config;
  config.control_plane_name = "tcp-fuzz";
  config.endpoint = "https://10.0.2.2:6443";
  config.ca_cert_hash = kPin;
  config.token = {"abcdef", "0123456789abcdef"};
  config.expires = 4102444800;  // 2100-01-01
  return config;
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

/// A cluster-info ConfigMap as the bootstrapsigner leaves it, for `kubeconfig`.
std::string signed_cluster_info(std::string_view kubeconfig, const kiln::JoinConfig& config) {
  std::string jws =
      kiln::compute_detached_jws(std::string(kubeconfig), config.token.id, config.token.secret);
  return R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cluster-info",)"
         R"("namespace":"kube-public"},"data":{"jws-kubeconfig-)" +
         config.token.id + "\":" + json_string(jws) + ",\"kubeconfig\":" + json_string(kubeconfig) +
         "}}";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const kiln::JoinConfig config = join_config();
  std::string_view input = kiln::fuzz::as_text(data, size);
  std::string body = input.substr(0, kSignPrefix.size()) == kSignPrefix
                         ? signed_cluster_info(input.substr(kSignPrefix.size()), config)
                         : std::string(input);
  kiln::HttpTransport transport = [&](const kiln::http::Request&) {
    kiln::http::Response response;
    response.status = 200;
    response.body = body;
    return response;
  };
  try {
    kiln::DiscoveredCluster cluster = kiln::discover_cluster(config, transport, 1);
    KILN_FUZZ_CHECK(kiln::ca_pin_from_pem(cluster.ca_pem) == kPin);
  } catch (const kiln::Error&) {
  }
  return 0;
}
