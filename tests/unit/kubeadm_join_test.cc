#include "builder/join/kubeadm_join.h"

#include <catch2/catch.hpp>

namespace {

kiln::JoinConfig sample() {
  kiln::JoinConfig config;
  config.endpoint = "https://10.0.2.2:26443";
  config.ca_cert_hash = "sha256:" + std::string(64, 'a');
  config.token = {"abcdef", "0123456789abcdef"};
  config.labels = {{"pool", "edge"}, {"tier", "test"}};
  config.taints = {{"dedicated", "edge", "NoSchedule"}};
  config.kubelet_extra_args = {{"max-pods", "50"}};
  return config;
}

}  // namespace

TEST_CASE("the kubeadm JoinConfiguration pins discovery and carries the node's settings") {
  std::string yaml =
      kiln::render_kubeadm_join_configuration(sample(), "node-a", kiln::Version{1, 34, 12});
  CHECK(yaml ==
        "apiVersion: kubeadm.k8s.io/v1beta4\n"
        "kind: JoinConfiguration\n"
        "discovery:\n"
        "  bootstrapToken:\n"
        "    apiServerEndpoint: 10.0.2.2:26443\n"
        "    token: abcdef.0123456789abcdef\n"
        "    caCertHashes:\n"
        "      - sha256:" +
            std::string(64, 'a') +
            "\n"
            "  tlsBootstrapToken: abcdef.0123456789abcdef\n"
            "nodeRegistration:\n"
            "  name: node-a\n"
            "  criSocket: unix:///run/containerd/containerd.sock\n"
            "  kubeletExtraArgs:\n"
            "    - name: max-pods\n"
            "      value: \"50\"\n"
            "    - name: node-labels\n"
            "      value: \"pool=edge,tier=test\"\n"
            "  taints:\n"
            "    - key: dedicated\n"
            "      value: edge\n"
            "      effect: NoSchedule\n");
}

TEST_CASE("kubeadm before v1.31 gets v1beta3 with kubelet arguments as a map") {
  std::string yaml =
      kiln::render_kubeadm_join_configuration(sample(), "node-a", kiln::Version{1, 30, 5});
  CHECK_THAT(yaml, Catch::StartsWith("apiVersion: kubeadm.k8s.io/v1beta3\n"));
  CHECK_THAT(
      yaml,
      Catch::Contains(
          "  kubeletExtraArgs:\n    max-pods: \"50\"\n    node-labels: \"pool=edge,tier=test\"\n"));
}

TEST_CASE("API server endpoints are host:port") {
  CHECK(kiln::api_server_endpoint("https://10.0.2.2:26443") == "10.0.2.2:26443");
  CHECK(kiln::api_server_endpoint("https://tcp.example/") == "tcp.example:443");
  CHECK(kiln::api_server_endpoint("https://[fd00::1]:6443") == "[fd00::1]:6443");
  CHECK(kiln::api_server_endpoint("https://[fd00::1]") == "[fd00::1]:443");
}
