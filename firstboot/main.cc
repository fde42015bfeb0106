// kiln-firstboot: joins this node to its Tenant Control Plane on first boot.
//
// Runs once per boot from kiln-firstboot.service, before the kubelet. Reads the join config
// from the KILNCFG partition (netbooted nodes: an appended initrd or a pinned URL; else cloud
// user data), checks the token's expiry, verifies the control plane itself (cluster-info signed for
// our token id, CA pinned), then runs `kubeadm join --config`. On success it erases the token from
// the partition and records the join on the state partition, so later boots do nothing. Every
// outcome is reported on the console and in the journal in detail (secrets masked), and in
// /etc/issue.d, shown before login, as a fixed short line (agent_report.h).
// `kiln-firstboot install` (kiln-install.service) is `pxe.install`: see disk_install.h.
// `kiln-firstboot network` (kiln-network.service) applies a stamped static network config.
//
// Statically linked: the image's distribution need not match the build host's libraries.
#include <fmt/format.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "builder/join/agent_report.h"
#include "builder/join/discovery.h"
#include "builder/join/join_config.h"
#include "builder/join/kubeadm_join.h"
#include "builder/join/network_config.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/sha256.h"
#include "builder/util/time.h"
#include "firstboot/disk_install.h"
#include "firstboot/https_client.h"
#include "firstboot/kernel_cmdline.h"
#include "firstboot/node_name.h"
#include "firstboot/static_network.h"
#include "firstboot/user_data.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

const fs::path kConfigDevice = "/dev/disk/by-partlabel/kiln-config";
const fs::path kRun = "/run/kiln";
const fs::path kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";
const fs::path kNetbootConfig = "/run/kiln/netboot-join.yaml";
const fs::path kInstalledMarker = "/run/kiln/installed";
const fs::path kJoinedMarker = "/var/lib/kiln/joined";
/// The kubelet version the join's configuration is for; kiln-update upgrades the configuration
/// when a later image brings a newer kubelet (`kiln-update kubelet-config`).
const fs::path kKubeletVersionRecord = "/var/lib/kiln/kubelet-version";
const fs::path kIssue = "/etc/issue.d/50-kiln.issue";
constexpr const char* kConfigFile = "join.yaml";

/// Journal and console: the units send stdout to both. Masked once more here, whatever the
/// message was built from.
void note(const std::string& message) {
  std::printf("%s\n", mask_bootstrap_tokens(message).c_str());
  std::fflush(stdout);
}

/// What someone at the screen needs: the details in the journal and on the console, and the
/// outcome's fixed line on the login banner, which never quotes an error.
void status(const std::string& details, AgentOutcome outcome, const BannerFacts& facts = {}) {
  note(details);
  std::error_code ec;
  fs::create_directories(kIssue.parent_path(), ec);
  try {
    write_file_atomic(kIssue, banner_line(outcome, facts) + "\n\n");
  } catch (const std::exception&) {
  }
}

bool mount_filesystem(const fs::path& device, const fs::path& target) {
  std::error_code ec;
  fs::create_directories(target, ec);
  for (const char* type : {"vfat", "iso9660"}) {
    if (::mount(device.c_str(), target.c_str(), type, MS_NOSUID | MS_NODEV | MS_NOEXEC,
                std::string(type) == "vfat" ? "umask=0077" : nullptr) == 0)
      return true;
  }
  return false;
}

/// Overwrites the file's bytes in place, then removes it: on FAT the clusters that held the
/// token are the ones overwritten, so no copy of it survives on the partition.
void scrub(const fs::path& file) {
  std::uint64_t size = fs::file_size(file);
  {
    std::fstream out(file, std::ios::in | std::ios::out | std::ios::binary);
    std::string zeros(size, '\0');
    out.write(zeros.data(), zeros.size());
  }
  fsync_path(file);
  fs::remove(file);
  fsync_path(file.parent_path());
}

struct ConfigSource {
  std::string text;
  std::string origin;
  std::optional<fs::path> scrub_after_join;  ///< set when the source is ours to erase
};

class BootstrapKubeconfigOnTmpfs {
 public:
  BootstrapKubeconfigOnTmpfs() {
    fs::create_directories(kLink.parent_path());
    if (!fs::exists(fs::symlink_status(kLink))) fs::create_symlink(kTarget, kLink);
  }
  ~BootstrapKubeconfigOnTmpfs() {
    std::error_code ec;
    fs::remove(kTarget, ec);
    if (fs::is_symlink(fs::symlink_status(kLink, ec))) fs::remove(kLink, ec);
  }

 private:
  const fs::path kLink = "/etc/kubernetes/bootstrap-kubelet.conf";
  const fs::path kTarget = kRun / "bootstrap-kubelet.conf";
};

/// `kiln.join_url=URL kiln.join_sha256=HEX`: one PXE server hands each node pool its own
/// config. The digest makes a config altered on the way (or on the server) a refusal.
std::optional<ConfigSource> config_from_kernel_url() {
  const std::string cmdline = firstboot::read_kernel_cmdline();
  auto url = firstboot::kernel_argument(cmdline, "kiln.join_url");
  if (!url) return std::nullopt;
  auto pin = firstboot::sha256_argument(cmdline, "kiln.join_sha256");
  if (!pin) throw Error("kiln.join_url needs kiln.join_sha256=<64 hex digits> beside it");
  http::Request call;
  call.url = *url;
  call.timeout_seconds = 10;
  // An https:// server must prove its name with a certificate the image trusts, so the token
  // is not handed to whoever answers.
  if (url->rfind("https://", 0) == 0) call.ca_pem = read_file(kSystemCaBundle);
  http::Response response;
  for (int delay = 2;; delay = std::min(delay * 2, 30)) {
    response = firstboot::request(call);
    if (response.error.empty() && response.status == 200) break;
    std::string why =
        response.error.empty() ? "HTTP " + std::to_string(response.status) : response.error;
    if (delay >= 30) throw Error("cannot fetch the join config from " + *url + ": " + why);
    status("kiln: fetching the join config from " + *url + " failed (" + why + "); retrying in " +
               std::to_string(delay) + " s",
           AgentOutcome::waiting, {.target = "the join config server"});
    std::this_thread::sleep_for(std::chrono::seconds(delay));
  }
  if (sha256_hex(response.body) != *pin) {
    throw Error("the join config from " + *url + " does not match kiln.join_sha256 (got sha256 " +
                sha256_hex(response.body) + "); refusing it");
  }
  return ConfigSource{response.body, "kiln.join_url " + *url, std::nullopt};
}

/// A join config handed to a netbooted node: an appended initrd or a pinned URL.
std::optional<ConfigSource> netboot_config() {
  if (fs::exists(kNetbootConfig))
    return ConfigSource{read_file(kNetbootConfig), "the netboot config initrd", kNetbootConfig};
  return config_from_kernel_url();
}

std::optional<ConfigSource> find_config() {
  fs::path config_mount = kRun / "config";
  if (fs::exists(kConfigDevice) && mount_filesystem(kConfigDevice, config_mount)) {
    if (fs::exists(config_mount / kConfigFile)) {
      return ConfigSource{read_file(config_mount / kConfigFile), "the KILNCFG partition",
                          config_mount / kConfigFile};
    }
  }
  // Netbooted nodes: a config image appended to the initrd (`kiln stamp --pxe`), which
  // kiln-netroot moved to /run, or a URL on the kernel command line pinned by its SHA-256.
  if (auto config = netboot_config()) return config;
  // NoCloud seed (Cluster API, libvirt, Proxmox): a cidata file system with user-data.
  for (const char* label : {"cidata", "CIDATA"}) {
    fs::path seed = fs::path("/dev/disk/by-label") / label;
    if (!fs::exists(seed) || !mount_filesystem(seed, kRun / "seed")) continue;
    if (fs::exists(kRun / "seed/user-data")) {
      auto config = firstboot::join_config_from_user_data(read_file(kRun / "seed/user-data"));
      ::umount((kRun / "seed").c_str());
      if (config) return ConfigSource{*config, "NoCloud user-data", std::nullopt};
    }
  }
  // EC2-style metadata service (AWS IMDSv1, OpenStack): user data of a launch template.
  http::Request call;
  call.url = "http://169.254.169.254/latest/user-data";
  call.timeout_seconds = 2;
  http::Response response = firstboot::request(call);
  if (response.error.empty() && response.status == 200) {
    if (auto config = firstboot::join_config_from_user_data(response.body))
      return ConfigSource{*config, "cloud metadata user-data", std::nullopt};
  }
  return std::nullopt;
}

std::string cloud_hostname() {
  http::Request call;
  call.url = "http://169.254.169.254/latest/meta-data/local-hostname";
  call.timeout_seconds = 2;
  http::Response response = firstboot::request(call);
  return response.error.empty() && response.status == 200 ? response.body : "";
}

/// How the banner names the control plane: its validated name, else its validated endpoint.
std::string banner_target(const JoinConfig& config) {
  return config.control_plane_name.empty() ? config.endpoint : config.control_plane_name;
}

/// Discovery, retried with capped exponential backoff while the endpoint is unreachable
/// and the token is still valid; any verification failure ends it at once.
DiscoveredCluster discover_with_backoff(const JoinConfig& config, long long give_up_at) {
  int delay = 2;
  for (int attempt = 1;; ++attempt) {
    try {
      return discover_cluster(config, firstboot::request, 10);
    } catch (const DiscoveryError& e) {
      if (e.failure() != DiscoveryFailure::unreachable) throw;
      long long now = unix_now();
      if (now + delay >= give_up_at || now + delay >= config.expires) {
        throw Error("kiln: giving up on " + config.endpoint + " after " + std::to_string(attempt) +
                    " attempts: " + e.what());
      }
      status("kiln: waiting for " + config.endpoint + " (attempt " + std::to_string(attempt) +
                 ", next in " + std::to_string(delay) + " s): " + e.what(),
             AgentOutcome::waiting, {.target = banner_target(config)});
      std::this_thread::sleep_for(std::chrono::seconds(delay));
      delay = std::min(delay * 2, 60);
    }
  }
}

Version kubeadm_version() {
  std::string text =
      run({"kubeadm", "version", "-o", "short"}, {.capture_stdout = true}).stdout_text;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  auto version = parse_version(text);
  if (!version) throw Error("cannot read kubeadm's version from '" + text + "'");
  return *version;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// The agent's own resident high-water mark (VmHWM), kubeadm, its child, not counted. Not
/// getrusage's ru_maxrss: that keeps the peak of the process image before exec, which under
/// systemd is systemd-executor's.
long peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

int join() {
  const auto started = std::chrono::steady_clock::now();
  if (fs::exists(kInstalledMarker)) {
    status("kiln: installed onto " + read_file(kInstalledMarker) +
               "; the node joins from there after the reboot",
           AgentOutcome::installed);
    return 0;
  }
  if (fs::exists(kJoinedMarker)) {
    std::string record = read_file(kJoinedMarker);
    while (!record.empty() && record.back() == '\n') record.pop_back();
    status("kiln: " + record + " (already joined; nothing to do)", AgentOutcome::already_joined,
           {.record = record});
    return 0;
  }
  auto source = find_config();
  if (!source) {
    status(
        "kiln: no join config (KILNCFG is empty, no netboot config, NoCloud seed or cloud user "
        "data): this node does not join a cluster; stamp one with `kiln stamp` (netbooted: "
        "`kiln stamp --pxe` or kiln.join_url=)",
        AgentOutcome::no_config);
    return 0;
  }
  JoinConfig config;
  try {
    config = parse_join_config(source->text, source->origin);
  } catch (const ParseErrors& e) {
    std::string all;
    for (const auto& error : e.errors()) all += "\n  " + error.render();
    status(
        "kiln: refusing to join: the join config from " + source->origin + " is malformed:" + all,
        AgentOutcome::config_invalid);
    return 1;
  }
  BannerFacts facts{.target = banner_target(config)};
  try {
    check_not_expired(config, unix_now());
  } catch (const Error& e) {
    status("kiln: refusing to join " + facts.target + ": " + e.what(), AgentOutcome::token_expired,
           facts);
    return 1;
  }
  long wait_limit = 900;
  if (const char* limit = std::getenv("KILN_FIRSTBOOT_WAIT_SECONDS")) wait_limit = std::atol(limit);
  DiscoveredCluster cluster;
  try {
    cluster = discover_with_backoff(config, unix_now() + wait_limit);
  } catch (const DiscoveryError& e) {
    facts.discovery = e.failure();
    status("kiln: refusing to join " + facts.target + ": " + e.what(),
           AgentOutcome::discovery_refused, facts);
    return 1;
  } catch (const Error& e) {
    status("kiln: refusing to join " + facts.target + ": " + e.what(),
           AgentOutcome::discovery_refused, facts);
    return 1;
  }
  firstboot::NodeFacts node_facts;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  node_facts.hostname = host;
  NodeNamePolicy policy = firstboot::effective_node_name_policy(config.node_name);
  if (policy == NodeNamePolicy::cloud) node_facts.cloud_hostname = cloud_hostname();
  facts.node = firstboot::node_name(policy, node_facts);

  fs::path kubeadm_config = kRun / "kubeadm-join.yaml";
  const Version kubeadm = kubeadm_version();  // the image's kubelet is of the same release
  write_file_atomic(kubeadm_config, render_kubeadm_join_configuration(config, facts.node, kubeadm),
                    0600);
  status("kiln: joining " + facts.target + " (" + cluster.server + ") as " + facts.node +
             " (node name policy " + to_string(policy) + ")",
         AgentOutcome::joining, facts);
  // kubeadm writes the token into /etc/kubernetes/bootstrap-kubelet.conf for the kubelet's
  // TLS bootstrap and deletes it afterwards, but on ext4 the deleted blocks would keep the
  // token. Through this link it lands on /run (tmpfs) instead and never reaches the disk.
  BootstrapKubeconfigOnTmpfs bootstrap_kubeconfig;
  note(fmt::format("kiln: starting kubeadm join {:.1f} s after the agent started",
                   seconds_since(started)));
  try {
    run({"kubeadm", "join", "--config", kubeadm_config.string()});
  } catch (const Error& e) {
    fs::remove(kubeadm_config);
    // Leave nothing half-joined behind: the next boot retries from scratch.
    try {
      run({"kubeadm", "reset", "--force"}, {.quiet = true});
    } catch (const Error&) {
    }
    status("kiln: kubeadm join to " + facts.target +
               " failed; the token is kept until it expires and the next boot retries. " + e.what(),
           AgentOutcome::join_failed, facts);
    return 1;
  }
  fs::remove(kubeadm_config);
  if (source->scrub_after_join) scrub(*source->scrub_after_join);
  facts.when = format_utc(unix_now());
  std::string record = "joined " + facts.target + " as " + facts.node + " at " + facts.when;
  write_file_atomic(kKubeletVersionRecord, "v" + kubeadm.text() + "\n");
  write_file_atomic(kJoinedMarker, record + "\n");
  status("kiln: " + record, AgentOutcome::joined, facts);
  note(fmt::format("kiln: agent peak RSS {} KiB", peak_rss_kib()));
  return 0;
}

/// `kiln-firstboot install` (kiln-install.service): `pxe.install`, before any join. The
/// installed disk gets the join config and joins after the reboot; this RAM boot does not.
int install() {
  try {
    std::optional<std::string> config, network;
    if (auto source = netboot_config()) config = source->text;
    if (fs::exists(firstboot::kNetbootNetworkConfig))
      network = read_network_config_file(firstboot::kNetbootNetworkConfig);
    firstboot::install_to_empty_disk(config, network, [](const std::string& message) {
      status(message, AgentOutcome::installing);
    });
    return 0;
  } catch (const std::exception& e) {
    status(std::string("kiln: installing onto a local disk failed: ") + e.what(),
           AgentOutcome::install_failed);
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "install") return install();
  if (argc > 1 && std::string(argv[1]) == "network") {
    try {
      return firstboot::apply_static_network();
    } catch (const std::exception& e) {
      std::printf("kiln-network: %s\n", e.what());
      return 1;
    }
  }
  try {
    return join();
  } catch (const std::exception& e) {
    status(std::string("kiln: first-boot join failed: ") + e.what(), AgentOutcome::failed);
    return 1;
  }
}
