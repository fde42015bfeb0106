#include "builder/rootfs/node_config.h"

#include <catch2/catch.hpp>

#include "builder/plan/plan.h"
#include "builder/rootfs/root_tree.h"

using kiln::RootTree;
using kiln::TreeNode;

namespace {

/// The handful of files a Debian base has that node configuration edits.
RootTree minimal_base() {
  RootTree tree;
  tree.write_file(
      "/etc/passwd",
      "root:x:0:0:root:/root:/bin/bash\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n");
  tree.write_file("/etc/shadow", "root:*:20000:0:99999:7:::\n", 0640, 0, 42);
  tree.write_file("/etc/group", "root:x:0:\nshadow:x:42:\nsudo:x:27:\n");
  tree.write_file("/etc/gshadow", "root:*::\nshadow:*::\nsudo:*::\n", 0640, 0, 42);
  tree.write_file("/etc/hostname", "buildhost\n");
  tree.write_file("/etc/resolv.conf", "nameserver 10.0.0.1\n");
  tree.write_file("/usr/lib/cni/bridge", "elf", 0755);
  tree.write_file("/usr/lib/cni/loopback", "elf", 0755);
  tree.write_file("/var/lib/dbus/machine-id", "0123456789abcdef0123456789abcdef\n");
  tree.write_file("/etc/ssh/ssh_host_ed25519_key", "PRIVATE", 0600);
  tree.write_file("/etc/ssh/ssh_host_ed25519_key.pub", "PUBLIC");
  tree.write_file("/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\n");
  return tree;
}

kiln::BuildPlan plan_with(kiln::Recipe recipe) {
  kiln::BuildPlan plan;
  plan.recipe = std::move(recipe);
  plan.source_date_epoch = 1700000000;
  return plan;
}

}  // namespace

TEST_CASE("containerd is configured with the systemd cgroup driver and the kubelet's pause image") {
  RootTree tree = minimal_base();
  kiln::write_node_config(tree, plan_with({}), {"registry.k8s.io/pause:3.10.1", false, false});
  const std::string& config = tree.read_file("/etc/containerd/config.toml");
  CHECK_THAT(config, Catch::Contains("version = 2\n"));
  CHECK_THAT(config, Catch::Contains("sandbox_image = \"registry.k8s.io/pause:3.10.1\""));
  CHECK_THAT(
      config,
      Catch::Contains(
          "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n"
          "        # kubeadm configures the kubelet with cgroupDriver: systemd; both must agree.\n"
          "        SystemdCgroup = true"));
  CHECK_THAT(config, Catch::Contains("bin_dir = \"/opt/cni/bin\""));

  RootTree v2 = minimal_base();
  kiln::write_node_config(v2, plan_with({}), {"registry.k8s.io/pause:3.10.1", true, true});
  CHECK_THAT(
      v2.read_file("/etc/containerd/config.toml"),
      Catch::Contains("version = 3\n\n[plugins.'io.containerd.cri.v1.images'.pinned_images]\n"
                      "  sandbox = 'registry.k8s.io/pause:3.10.1'"));
  CHECK(v2.find("/etc/systemd/system/multi-user.target.wants/containerd.service")->target ==
        "/usr/lib/systemd/system/containerd.service");
}

TEST_CASE("the kubelet unit and kubeadm drop-in are installed and enabled") {
  RootTree tree = minimal_base();
  kiln::write_node_config(tree, plan_with({}), {"p", false, false});
  CHECK_THAT(tree.read_file("/usr/lib/systemd/system/kubelet.service"),
             Catch::Contains("ExecStart=/usr/bin/kubelet\nRestart=always"));
  const std::string& dropin =
      tree.read_file("/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf");
  CHECK_THAT(dropin,
             Catch::Contains("--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf "
                             "--kubeconfig=/etc/kubernetes/kubelet.conf"));
  CHECK_THAT(dropin, Catch::Contains("EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env"));
  CHECK_THAT(dropin,
             Catch::Contains("ExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS "
                             "$KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n"));
  const TreeNode* wants = tree.find("/etc/systemd/system/multi-user.target.wants/kubelet.service");
  REQUIRE(wants);
  CHECK(wants->target == "/usr/lib/systemd/system/kubelet.service");
}

TEST_CASE("kernel settings, crictl, swap, CNI paths and machine identity are ready for kubeadm") {
  kiln::Recipe recipe;
  recipe.sysctl["vm.max_map_count"] = "262144";
  recipe.modules = {"ip_vs", "overlay"};
  RootTree tree = minimal_base();
  kiln::write_node_config(tree, plan_with(recipe), {"p", false, false});
  CHECK(tree.read_file("/etc/sysctl.d/99-kubernetes.conf") ==
        "# Written by kiln: what kubeadm's preflight checks and pod networking need.\n"
        "net.bridge.bridge-nf-call-ip6tables = 1\n"
        "net.bridge.bridge-nf-call-iptables = 1\n"
        "net.ipv4.ip_forward = 1\n"
        "vm.max_map_count = 262144\n");
  CHECK(tree.read_file("/etc/modules-load.d/kubernetes.conf") ==
        "# Written by kiln: containerd's overlay snapshotter and bridged pod "
        "traffic.\noverlay\nbr_netfilter\nip_vs\n");
  CHECK(tree.read_file("/etc/crictl.yaml") ==
        "runtime-endpoint: unix:///run/containerd/containerd.sock\n"
        "image-endpoint: unix:///run/containerd/containerd.sock\ntimeout: 10\n");
  CHECK(tree.find("/etc/crictl.yaml")->mode == 0644);
  CHECK(tree.find("/etc/systemd/system/swap.target")->target == "/dev/null");
  CHECK(tree.find("/opt/cni/bin")->target == "/var/opt/cni/bin");
  CHECK(tree.find("/var/opt/cni/bin/bridge")->target == "/usr/lib/cni/bridge");
  CHECK(tree.read_file("/etc/machine-id").empty());
  CHECK(tree.find("/var/lib/dbus/machine-id")->target == "/etc/machine-id");
  CHECK_FALSE(tree.contains("/etc/hostname"));
  CHECK_FALSE(tree.contains("/etc/resolv.conf"));
  // Host keys made by openssh-server's postinst would be shared by every node.
  CHECK_FALSE(tree.contains("/etc/ssh/ssh_host_ed25519_key"));
  CHECK_FALSE(tree.contains("/etc/ssh/ssh_host_ed25519_key.pub"));
  CHECK(tree.contains("/etc/ssh/sshd_config"));
}

TEST_CASE("recipe users get passwd entries, a locked password and their SSH keys") {
  kiln::Recipe recipe;
  kiln::UserSpec user;
  user.name = "ops";
  user.groups = {"sudo"};
  user.ssh_authorized_keys = {"ssh-ed25519 AAAA ops@example"};
  recipe.users = {user};
  RootTree tree = minimal_base();
  kiln::add_users(tree, plan_with(recipe));
  CHECK_THAT(tree.read_file("/etc/passwd"),
             Catch::EndsWith("ops:x:1000:1000::/home/ops:/bin/bash\n"));
  CHECK_THAT(tree.read_file("/etc/shadow"), Catch::EndsWith("ops:!:19675:0:99999:7:::\n"));
  CHECK_THAT(tree.read_file("/etc/group"), Catch::Contains("sudo:x:27:ops\n"));
  CHECK(tree.find("/etc/shadow")->gid == 42);
  const TreeNode* keys = tree.find("/home/ops/.ssh/authorized_keys");
  REQUIRE(keys);
  CHECK(keys->data == "ssh-ed25519 AAAA ops@example\n");
  CHECK(keys->mode == 0600);
  CHECK(keys->uid == 1000);
  CHECK(tree.find("/home/ops/.ssh")->mode == 0700);

  kiln::Recipe unknown_group;
  user.groups = {"wheel"};
  unknown_group.users = {user};
  RootTree other = minimal_base();
  CHECK_THROWS_WITH(
      kiln::add_users(other, plan_with(unknown_group)),
      "group 'wheel' for user 'ops' does not exist in the image; add the package that creates it");
}

TEST_CASE("inline files get their mode and resolved owner") {
  kiln::Recipe recipe;
  kiln::FileSpec file;
  file.path = "/etc/kiln/note";
  file.content = "hi\n";
  file.mode = 0600;
  file.owner = "sshd";
  file.group = "shadow";
  recipe.files = {file};
  RootTree tree = minimal_base();
  kiln::add_recipe_files(tree, plan_with(recipe));
  const TreeNode* node = tree.find("/etc/kiln/note");
  REQUIRE(node);
  CHECK(node->data == "hi\n");
  CHECK(node->mode == 0600);
  CHECK(node->uid == 100);
  CHECK(node->gid == 42);
}
