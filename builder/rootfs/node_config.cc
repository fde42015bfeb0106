#include "builder/rootfs/node_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <sstream>

#include "builder/util/error.h"
#include "builder/util/node_name_policy.h"

namespace kiln {
namespace {

std::string containerd_config(const NodeConfigInputs& inputs) {
  if (inputs.containerd_v2) {
    return fmt::format(R"(# Written by kiln: containerd 2.x for kubeadm-managed kubelets.
version = 3

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = '{}'

[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = 'runc'

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = 'io.containerd.runc.v2'

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  # kubeadm configures the kubelet with cgroupDriver: systemd; both must agree.
  SystemdCgroup = true

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dir = '/opt/cni/bin'
  conf_dir = '/etc/cni/net.d'
)",
                       inputs.pause_image);
  }
  return fmt::format(R"(# Written by kiln: containerd 1.7 for kubeadm-managed kubelets.
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{}"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # kubeadm configures the kubelet with cgroupDriver: systemd; both must agree.
        SystemdCgroup = true

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
)",
                     inputs.pause_image);
}

// The unit and drop-in are the ones kubeadm's installation guide prescribes
// (kubernetes/release, cmd/krel/templates/latest/kubelet and kubeadm/10-kubeadm.conf).
constexpr const char* kKubeletUnit = R"([Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target
# An unjoined node has no kubelet configuration: rather than crash-looping every 10 s until
# then, the kubelet waits for `kubeadm join` to write it (kubeadm restarts the kubelet).
ConditionPathExists=/var/lib/kubelet/config.yaml

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
)";

constexpr const char* kKubeadmDropIn =
    R"(# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort. Preferably, the user should use
# the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. KUBELET_EXTRA_ARGS should be sourced from this file.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
)";

// containerd's own unit from its release tarball's documentation, for release installs.
constexpr const char* kContainerdUnit = R"([Unit]
Description=containerd container runtime
Documentation=https://containerd.io
After=network.target local-fs.target dbus.service

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
)";

// Ed25519 and ECDSA only: an RSA-3072 key took most of ten seconds of a first boot's CPU
// under emulation (and seconds on a small edge board), and every OpenSSH client since 6.5
// takes Ed25519; ECDSA serves FIPS-mode clients.
constexpr const char* kSshHostKeysUnit = R"([Unit]
Description=Generate this node's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N "" -f /etc/ssh/ssh_host_ecdsa_key
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
)";

// Without HostKey lines sshd tries its default list, RSA first, and logs the missing key.
constexpr const char* kSshHostKeysConfig =
    "# kiln: the host keys ssh-host-keys.service makes on first boot (no RSA key).\n"
    "HostKey /etc/ssh/ssh_host_ed25519_key\n"
    "HostKey /etc/ssh/ssh_host_ecdsa_key\n";

std::string sysctl_config(const BuildPlan& plan) {
  std::map<std::string, std::string> settings = {
      {"net.ipv4.ip_forward", "1"},
      {"net.bridge.bridge-nf-call-iptables", "1"},
      {"net.bridge.bridge-nf-call-ip6tables", "1"},
  };
  for (const auto& [key, value] : plan.recipe.sysctl) settings[key] = value;
  std::string out = "# Written by kiln: what kubeadm's preflight checks and pod networking need.\n";
  for (const auto& [key, value] : settings) out += key + " = " + value + "\n";
  return out;
}

std::string modules_config(const BuildPlan& plan) {
  std::string out =
      "# Written by kiln: containerd's overlay snapshotter and bridged pod "
      "traffic.\noverlay\nbr_netfilter\n";
  for (const auto& module : plan.recipe.modules) {
    if (module != "overlay" && module != "br_netfilter") out += module + "\n";
  }
  return out;
}

/// Lines of a colon-separated database (/etc/passwd, /etc/group ...).
std::vector<std::vector<std::string>> parse_db(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    std::vector<std::string> fields;
    size_t start = 0;
    for (size_t colon; (colon = line.find(':', start)) != std::string::npos; start = colon + 1) {
      fields.push_back(line.substr(start, colon - start));
    }
    fields.push_back(line.substr(start));
    rows.push_back(std::move(fields));
  }
  return rows;
}

std::string format_db(const std::vector<std::vector<std::string>>& rows) {
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) out += (i ? ":" : "") + row[i];
    out += "\n";
  }
  return out;
}

std::optional<unsigned> lookup_id(const RootTree& tree, const char* db, const std::string& name) {
  if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit))
    return unsigned(std::stoul(name));
  for (const auto& row : parse_db(tree.read_file(db))) {
    if (row.size() > 2 && row[0] == name) return unsigned(std::stoul(row[2]));
  }
  return std::nullopt;
}

unsigned next_free_id(const std::vector<std::vector<std::string>>& rows) {
  unsigned id = 1000;
  for (const auto& row : rows) {
    if (row.size() > 2) {
      unsigned used = unsigned(std::stoul(row[2]));
      if (used >= id && used < 60000) id = used + 1;
    }
  }
  return id;
}

}  // namespace

void enable_unit(RootTree& tree, const std::string& unit, const std::string& target) {
  tree.make_symlink("/etc/systemd/system/" + target + ".wants/" + unit,
                    "/usr/lib/systemd/system/" + unit);
}

void write_node_config(RootTree& tree, const BuildPlan& plan, const NodeConfigInputs& inputs) {
  tree.write_file("/etc/containerd/config.toml", containerd_config(inputs));
  if (inputs.containerd_from_release) {
    tree.write_file("/usr/lib/systemd/system/containerd.service", kContainerdUnit);
    enable_unit(tree, "containerd.service");
  }
  tree.write_file("/usr/lib/systemd/system/kubelet.service", kKubeletUnit);
  tree.write_file("/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", kKubeadmDropIn);
  enable_unit(tree, "kubelet.service");
  tree.make_directory("/etc/kubernetes/manifests");
  tree.make_directory("/var/lib/kubelet", 0700);

  tree.write_file("/etc/crictl.yaml",
                  "runtime-endpoint: unix:///run/containerd/containerd.sock\n"
                  "image-endpoint: unix:///run/containerd/containerd.sock\n"
                  "timeout: 10\n");
  tree.write_file("/etc/modules-load.d/kubernetes.conf", modules_config(plan));
  tree.write_file("/etc/sysctl.d/99-kubernetes.conf", sysctl_config(plan));

  // The kubelet refuses to run with swap on: no swap entries, and swap units masked.
  tree.write_file("/etc/fstab",
                  "# kiln images mount their file systems by partition type; no swap.\n");
  tree.make_symlink("/etc/systemd/system/swap.target", "/dev/null");

  // CNI plugins (flannel, calico ...) install into /opt/cni/bin, which must stay writable
  // under a read-only root: it points into /var. Debian's plugins live in /usr/lib/cni.
  tree.make_directory("/var/opt/cni/bin");
  tree.make_symlink("/opt/cni/bin", "/var/opt/cni/bin");
  std::vector<std::string> plugins;
  for (const auto& [path, node] : tree.nodes()) {
    if (path.rfind("usr/lib/cni/", 0) == 0 && node.type == TreeNode::Type::file)
      plugins.push_back(path.substr(12));
  }
  for (const auto& plugin : plugins)
    tree.make_symlink("/var/opt/cni/bin/" + plugin, "/usr/lib/cni/" + plugin);
  tree.make_directory("/etc/cni/net.d");

  // Each node gets its own identity on first boot (systemd-machine-id-setup).
  tree.write_file("/etc/machine-id", "", 0444);
  tree.remove("/var/lib/dbus/machine-id");
  tree.make_symlink("/var/lib/dbus/machine-id", "/etc/machine-id");
  // The recipe's node_name is the agent's default; a join config's namePolicy overrides it.
  tree.write_file(kImageNodeNamePolicyPath, std::string(to_string(plan.recipe.node_name)) + "\n");
  if (plan.recipe.hostname.empty()) {
    tree.remove("/etc/hostname");  // DHCP or the node-name policy names the node
  } else {
    tree.write_file("/etc/hostname", plan.recipe.hostname + "\n");
  }
  // Never leak the build host's resolver into the image; systemd-resolved's link stays.
  if (const TreeNode* resolv = tree.find("/etc/resolv.conf");
      resolv && resolv->type != TreeNode::Type::symlink)
    tree.remove("/etc/resolv.conf");
  remove_per_node_secrets(tree);
}

void remove_per_node_secrets(RootTree& tree) {
  // openssh-server's postinst generates host keys at install time: every node would share
  // them, and every build would differ. ssh-host-keys.service makes this node's own on its
  // first boot, before sshd starts.
  std::vector<std::string> keys;
  for (const auto& [path, node] : tree.nodes()) {
    if (path.rfind("etc/ssh/ssh_host_", 0) == 0) keys.push_back(path);
  }
  for (const auto& key : keys) tree.remove(key);
  if (!tree.contains("/usr/lib/systemd/system/ssh.service")) return;
  tree.write_file("/usr/lib/systemd/system/ssh-host-keys.service", kSshHostKeysUnit);
  tree.write_file("/etc/ssh/sshd_config.d/10-kiln-host-keys.conf", kSshHostKeysConfig);
  tree.make_symlink("/etc/systemd/system/ssh.service.wants/ssh-host-keys.service",
                    "/usr/lib/systemd/system/ssh-host-keys.service");
}

void add_users(RootTree& tree, const BuildPlan& plan) {
  if (plan.recipe.users.empty()) return;
  auto passwd = parse_db(tree.read_file("/etc/passwd"));
  auto shadow = parse_db(tree.read_file("/etc/shadow"));
  auto group = parse_db(tree.read_file("/etc/group"));
  auto gshadow =
      tree.contains("/etc/gshadow") ? parse_db(tree.read_file("/etc/gshadow")) : decltype(group){};
  std::string days = std::to_string(plan.source_date_epoch / 86400);
  for (const auto& user : plan.recipe.users) {
    for (const auto& row : passwd) {
      if (row[0] == user.name)
        throw Error(user.mark, "user '" + user.name + "' already exists in the image");
    }
    unsigned uid = std::max(next_free_id(passwd), next_free_id(group));
    std::string id = std::to_string(uid);
    passwd.push_back({user.name, "x", id, id, "", "/home/" + user.name, user.shell});
    // Locked password: these users log in with their SSH keys only.
    shadow.push_back({user.name, "!", days, "0", "99999", "7", "", "", ""});
    group.push_back({user.name, "x", id, ""});
    gshadow.push_back({user.name, "!", "", ""});
    for (const auto& extra : user.groups) {
      auto add_member = [&](std::vector<std::vector<std::string>>& rows, size_t field) {
        for (auto& row : rows) {
          if (row[0] != extra || row.size() <= field) continue;
          row[field] += (row[field].empty() ? "" : ",") + user.name;
          return true;
        }
        return false;
      };
      if (!add_member(group, 3)) {
        throw Error(user.mark,
                    "group '" + extra + "' for user '" + user.name +
                        "' does not exist in the image; add the package that creates it");
      }
      add_member(gshadow, 3);
    }
    std::string home = "/home/" + user.name;
    tree.make_directory(home, 0750, uid, uid);
    if (!user.ssh_authorized_keys.empty()) {
      tree.make_directory(home + "/.ssh", 0700, uid, uid);
      std::string keys;
      for (const auto& key : user.ssh_authorized_keys) keys += key + "\n";
      tree.write_file(home + "/.ssh/authorized_keys", keys, 0600, uid, uid);
    }
  }
  tree.write_file("/etc/passwd", format_db(passwd), 0644);
  tree.write_file("/etc/shadow", format_db(shadow), 0640, 0,
                  lookup_id(tree, "/etc/group", "shadow").value_or(0));
  tree.write_file("/etc/group", format_db(group), 0644);
  if (!gshadow.empty()) {
    tree.write_file("/etc/gshadow", format_db(gshadow), 0640, 0,
                    lookup_id(tree, "/etc/group", "shadow").value_or(0));
  }
}

void add_recipe_files(RootTree& tree, const BuildPlan& plan) {
  for (const auto& file : plan.recipe.files) {
    auto uid = lookup_id(tree, "/etc/passwd", file.owner);
    if (!uid)
      throw Error(file.mark,
                  "owner '" + file.owner + "' of " + file.path + " does not exist in the image");
    auto gid = lookup_id(tree, "/etc/group", file.group);
    if (!gid)
      throw Error(file.mark,
                  "group '" + file.group + "' of " + file.path + " does not exist in the image");
    tree.write_file(file.path, file.content, file.mode, *uid, *gid);
  }
}

}  // namespace kiln
