// kiln-update: moves a kiln node to a new image version, atomically, and back by itself when
// the new version does not become healthy.
//
//   kiln-update check     (kiln-update.timer) fetch the signed index; stage a newer version
//                         in the inactive slot for a trial boot; reboot per updates.reboot
//   kiln-update health    (kiln-update-health.service, every boot) bless a healthy trial,
//                         or fail (the unit then reboots, spending one of its tries); after
//                         a rollback, say why and never try that version again
//   kiln-update status    what runs, what is staged, what was refused
//   kiln-update --reboot  boot a staged version now (updates.reboot: manual)
//   kiln-update --rollback  back to the previous version on this disk, on purpose
//
// Nothing about the boot configuration changes until the new slot's root, hash tree, kernel
// and initrd have all been checked against the signed index and the slot has been verified
// block by block against its dm-verity root hash. Statically linked, like kiln-firstboot.
#include <fmt/format.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>

#include "builder/update/image_version.h"
#include "builder/update/release_signature.h"
#include "builder/update/update_index.h"
#include "builder/update/verity_check.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/scan.h"
#include "firstboot/https_client.h"
#include "firstboot/update/boot_entries.h"
#include "firstboot/update/health.h"
#include "firstboot/update/kubelet_upgrade.h"
#include "firstboot/update/node_paths.h"
#include "firstboot/update/node_state.h"
#include "firstboot/update/slot_install.h"

namespace fs = std::filesystem;
using namespace kiln;
using namespace kiln::update;

namespace {

/// Exit codes: 0 done (or nothing to do), 1 failed (retried at the next check), 2 usage,
/// 3 a release was refused (unsigned, foreign key, bad digest, fails dm-verity, too old).
constexpr int kFailed = 1, kUsageError = 2, kRefused = 3;

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

long peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

/// The ESP, mounted for as long as this object lives unless a folder was given.
class EspMount {
 public:
  explicit EspMount(const NodePaths& paths) {
    if (!paths.esp.empty()) {
      path_ = paths.esp;
      return;
    }
    path_ = "/run/kiln/esp";
    fs::create_directories(path_);
    fs::path device = paths.partitions / "esp";
    if (::mount(device.c_str(), path_.c_str(), "vfat", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "umask=0077") != 0)
      throw Error("cannot mount the ESP (" + device.string() + "): " + std::strerror(errno));
    mounted_ = true;
  }
  ~EspMount() {
    if (mounted_) {
      ::sync();
      ::umount(path_.c_str());
    }
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  bool mounted_ = false;
};

/// A per-node update URL that `kiln stamp --update-url` wrote into the config partition.
std::string stamped_update_url(const NodePaths& paths) {
  std::error_code ec;
  if (!fs::exists(paths.config_partition, ec)) return "";
  if (fs::is_regular_file(paths.config_partition, ec)) return "";
  fs::path dir = "/run/kiln/update-config";
  fs::create_directories(dir, ec);
  // Read-write like kiln-firstboot's mount of it: the kernel refuses (EBUSY) a read-only
  // mount of a file system that is mounted read-write elsewhere. Only read here.
  if (::mount(paths.config_partition.c_str(), dir.c_str(), "vfat", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "umask=0077") != 0) {
    say("kiln-update: cannot read a stamped update URL from " + paths.config_partition.string() +
        ": " + std::strerror(errno));
    return "";
  }
  std::string url;
  if (fs::exists(dir / "update-url", ec) && fs::file_size(dir / "update-url", ec) < 4096) {
    url = read_file(dir / "update-url");
    while (!url.empty() && (url.back() == '\n' || url.back() == '\r')) url.pop_back();
  }
  ::umount(dir.c_str());
  return url;
}

std::string fetch_text(const std::string& url, std::size_t max_bytes) {
  http::Request request;
  request.url = url;
  request.timeout_seconds = 60;
  request.max_response_bytes = max_bytes;
  http::Response response = firstboot::request(request);
  if (!response.error.empty()) throw Error("cannot fetch " + url + ": " + response.error);
  if (response.status != 200)
    throw Error(fmt::format("cannot fetch {}: HTTP {}", url, response.status));
  return response.body;
}

/// The newest release this node may install, or nullptr.
const UpdateRelease* choose_release(const UpdateIndex& index, const UpdateSettings& settings,
                                    const NodeState& state) {
  const UpdateRelease* best = nullptr;
  for (const auto& r : index.releases) {
    if (compare_image_versions(r.version, settings.version) <= 0) continue;
    if (state.is_refused(r.version)) {
      say("kiln-update: skipping " + r.version + ": it was rolled back on this node before");
      continue;
    }
    if (!best || compare_image_versions(r.version, best->version) > 0) best = &r;
  }
  return best;
}

std::string slot_arguments(const std::string& slot) {
  auto [root, verity] = slot_partitions(slot);
  return fmt::format(
      " systemd.verity_root_data=PARTLABEL={} systemd.verity_root_hash=PARTLABEL={} "
      "kiln.slot={}",
      root, verity, slot);
}

/// A trial must reboot by itself wherever it stops: a kernel panic after 10 s, the initrd's
/// emergency mode by rebooting instead of waiting for a shell.
constexpr const char* kTrialArguments = " panic=10 rd.shell=0 rd.emergency=reboot";

void reboot_now(const NodePaths& paths, const std::string& why) {
  say("kiln-update: rebooting: " + why);
  if (paths.no_reboot) {
    say("kiln-update: (--no-reboot: not rebooting)");
    return;
  }
  run({"systemctl", "reboot"});
}

void apply_reboot_policy(const NodePaths& paths, const UpdateSettings& settings,
                         const std::string& version) {
  if (settings.reboot == "immediate") {
    reboot_now(paths, "to try version " + version);
  } else if (settings.reboot == "kured") {
    fs::create_directories(paths.reboot_required.parent_path());
    write_file_atomic(paths.reboot_required, "*** System restart required ***\n");
    write_file_atomic(paths.reboot_required.string() + ".pkgs", "kiln " + version + "\n");
    say("kiln-update: version " + version + " waits for a reboot; wrote " +
        paths.reboot_required.string() + " for kured to drain and reboot this node");
  } else {
    say("kiln-update: version " + version + " waits for a reboot: run `kiln-update --reboot`");
  }
}

bool entry_exists(const fs::path& esp, const std::string& version) {
  for (const auto& e : read_entries(esp))
    if (e.version == version) return true;
  return false;
}

void verify_slot(const fs::path& root_device, const fs::path& verity_device,
                 const UpdateRelease& release) {
  int data = ::open(root_device.c_str(), O_RDONLY | O_CLOEXEC);
  int hash = ::open(verity_device.c_str(), O_RDONLY | O_CLOEXEC);
  std::string problem;
  if (data < 0 || hash < 0) {
    problem = "cannot open the slot";
  } else {
    ::posix_fadvise(data, 0, 0, POSIX_FADV_DONTNEED);
    ::posix_fadvise(hash, 0, 0, POSIX_FADV_DONTNEED);
    problem = verify_verity(data, release.root.size, hash, release.root_hash);
    ::posix_fadvise(data, 0, 0, POSIX_FADV_DONTNEED);
  }
  if (data >= 0) ::close(data);
  if (hash >= 0) ::close(hash);
  if (!problem.empty()) throw Refusal("the written slot fails dm-verity verification: " + problem);
}

/// Writes a release's root onto the slot, from its zstd frames when the index lists them (a
/// fraction of the bytes), else whole. Frames that cannot be fetched or do not decode to the
/// root are reported, and the root is fetched whole instead: an index names both. A slot
/// that fails its digest after a resumed download stays a refusal, as for a whole root.
void write_root(const std::string& url, const UpdateRelease& release, const fs::path& device,
                NodeState& state, const Say& say) {
  if (release.root_zstd) {
    auto fall_back = [&](const Error& e) {
      say(fmt::format("kiln-update: {}; fetching {} whole instead", e.what(), release.root.name));
    };
    try {
      write_frames_to_slot(url, release.root, *release.root_zstd, device, release.version, state,
                           say);
      return;
    } catch (const BadFrames& e) {
      fall_back(e);
    } catch (const Refusal&) {
      throw;
    } catch (const Error& e) {
      fall_back(e);
    }
  }
  write_to_slot(url, release.root, device, release.version, "root", state, say);
}

int check(const NodePaths& paths) {
  UpdateSettings settings = read_settings(paths, stamped_update_url(paths));
  if (settings.url.empty()) {
    say("kiln-update: no update source (updates.url, or kiln stamp --update-url); nothing to do");
    return 0;
  }
  NodeState state(paths.state);
  // One kiln-update at a time (the timer, an operator, a script): the second waits.
  FileLock lock(paths.state / "lock");
  EspMount esp(paths);
  if (fs::exists(esp.path() / "config.txt") && fs::exists(esp.path() / "start4.elf")) {
    throw Refusal(
        "this node boots through the Raspberry Pi firmware, which counts no boot tries, so a "
        "version that failed could not be rolled back; flash the new image instead");
  }
  if (!state.trial_version().empty()) {
    if (entry_exists(esp.path(), state.trial_version())) {
      say("kiln-update: version " + state.trial_version() +
          " is staged; it boots at the next restart");
      return 0;
    }
    state.clear_trial();  // staging was cut short before its boot entry: stage again
  }

  say("kiln-update: running " + settings.name + " " + settings.version + "; checking " +
      settings.url);
  std::string index_text = fetch_text(file_url(settings.url, "index.json"), kMaxUpdateIndexBytes);
  std::string signature;
  try {
    signature = fetch_text(file_url(settings.url, "index.json.sig"), 4096);
  } catch (const Error& e) {
    throw Refusal(std::string("the update index is unsigned (") + e.what() + ")");
  }
  auto key = verify_release(settings.trusted_keys, index_text, signature);
  if (!key) {
    throw Refusal(
        fmt::format("index.json is not signed by a key this image trusts ({} trusted "
                    "key(s) in the image's updates.trusted_keys)",
                    settings.trusted_keys.size()));
  }
  UpdateIndex index = parse_update_index(index_text);
  if (index.name != settings.name || index.arch != settings.arch) {
    throw Refusal(fmt::format("the update folder holds {} ({}), not this node's {} ({})",
                              index.name, index.arch, settings.name, settings.arch));
  }
  const UpdateRelease* release = choose_release(index, settings, state);
  if (!release) {
    const UpdateRelease* newest = newest_release(index);
    say(fmt::format("kiln-update: up to date ({} is the newest release; this node runs {})",
                    newest ? newest->version : "none", settings.version));
    return 0;
  }
  if (release->cmdline.find("roothash=" + release->root_hash) == std::string::npos)
    throw Refusal("release " + release->version + "'s command line does not boot its root hash");

  std::string slot = running_slot(paths) == "a" ? "b" : "a";
  auto [root_label, verity_label] = slot_partitions(slot);
  if (!fs::exists(paths.partitions / root_label) || !fs::exists(paths.partitions / verity_label)) {
    throw Error("this disk has no " + root_label +
                " slot to update into (built with disk.root_b: "
                "0?); reflash it with an image that has one");
  }
  const std::uint64_t root_download =
      release->root_zstd ? release->root_zstd->file.size : release->root.size;
  say(fmt::format("kiln-update: installing {} into slot {} ({} MiB, {} MiB to download)",
                  release->version, slot, (release->root.size + release->verity.size) >> 20,
                  (root_download + release->verity.size) >> 20));
  // Nothing may boot a slot while it is being overwritten.
  for (const auto& e : read_entries(esp.path())) {
    bool on_b = e.options.find("kiln.slot=b") != std::string::npos;
    if ((on_b ? "b" : "a") == slot && compare_image_versions(e.version, settings.version) != 0) {
      say("kiln-update: removing the boot entry of " + e.version + ", whose slot is reused");
      remove_entry(esp.path(), e.version);
    }
  }
  const auto started = std::chrono::steady_clock::now();
  write_root(settings.url, *release, paths.partitions / root_label, state, say);
  write_to_slot(settings.url, release->verity, paths.partitions / verity_label, release->version,
                "verity", state, say);
  try {
    verify_slot(paths.partitions / root_label, paths.partitions / verity_label, *release);
  } catch (const Refusal&) {
    state.clear_progress();
    throw;
  }
  say("kiln-update: slot " + slot + " matches root hash " + release->root_hash);

  fs::path kernel = paths.state / "vmlinuz.new", initrd = paths.state / "initrd.img.new";
  TempPath kernel_cleanup(kernel), initrd_cleanup(initrd);
  download_checked(settings.url, release->kernel, kernel, say);
  download_checked(settings.url, release->initrd, initrd, say);
  state.set_trial(release->version, slot);
  add_trial_entry(esp.path(), "kiln " + settings.name + " " + release->version, release->version,
                  kernel, initrd, release->cmdline + slot_arguments(slot) + kTrialArguments,
                  int(settings.tries));
  state.clear_progress();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  say(
      fmt::format("kiln-update: version {} staged for a trial boot ({} tries) in {:.0f} s; peak "
                  "memory {} KiB",
                  release->version, settings.tries, seconds, peak_rss_kib()));
  apply_reboot_policy(paths, settings, release->version);
  return 0;
}

int health(const NodePaths& paths, std::optional<int> timeout_override) {
  UpdateSettings settings = read_settings(paths, "");
  const int timeout_seconds = timeout_override.value_or(int(settings.health_timeout));
  NodeState state(paths.state);
  FileLock lock(paths.state / "lock");
  std::string trial = state.trial_version();
  if (trial.empty()) {
    say("kiln-update: running " + settings.name + " " + settings.version + " from slot " +
        running_slot(paths));
    return 0;
  }
  EspMount esp(paths);
  if (compare_image_versions(trial, settings.version) != 0) {
    if (!trial_exhausted(esp.path(), trial)) {
      say("kiln-update: version " + trial + " is staged; it boots at the next restart");
      return 0;
    }
    std::string why = state.trial_failure();
    if (why.empty()) why = "it never reached the health check: it hung, panicked or reset before";
    say(
        fmt::format("kiln-update: ROLLED BACK: version {} did not become healthy in its tries "
                    "({}); running {} again. {} will not be tried again; a newer version will.",
                    trial, why, settings.version, trial));
    state.refuse(trial);
    remove_entry(esp.path(), trial);
    state.clear_trial();
    return 0;
  }

  say("kiln-update: trial boot of version " + trial + "; checking its health");
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + std::chrono::seconds(timeout_seconds);
  std::string problem, reported;
  for (;;) {
    problem = health_problem(paths);
    if (problem.empty()) break;
    if (problem != reported) say("kiln-update: not healthy yet: " + problem);
    reported = problem;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::seconds(5));
  }
  if (!problem.empty()) {
    state.set_trial_failure(problem);
    say(
        fmt::format("kiln-update: version {} is not healthy after {} s: {}; rebooting (the boot "
                    "loader falls back once its tries are spent)",
                    trial, timeout_seconds, problem));
    return kFailed;  // the unit's FailureAction reboots
  }
  bless_entry(esp.path(), trial);
  state.clear_trial();
  std::error_code ec;
  fs::remove(paths.reboot_required, ec);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  say(
      fmt::format("kiln-update: version {} is healthy ({:.0f} s after the check started); it is "
                  "now the default",
                  trial, seconds));
  return 0;
}

int status(const NodePaths& paths) {
  UpdateSettings settings = read_settings(paths, stamped_update_url(paths));
  NodeState state(paths.state);
  say("image:    " + settings.name + " " + settings.version + " (" + settings.arch + ")");
  say("slot:     " + running_slot(paths));
  say("source:   " + (settings.url.empty() ? std::string("none") : settings.url));
  say("reboot:   " + settings.reboot + ", " + std::to_string(settings.tries) +
      " tries per version");
  say("staged:   " +
      (state.trial_version().empty() ? std::string("nothing") : state.trial_version()));
  std::string refused;
  for (const auto& v : state.refused_versions()) refused += (refused.empty() ? "" : ", ") + v;
  say("refused:  " + (refused.empty() ? std::string("none") : refused));
  return 0;
}

/// `kiln-update --rollback`: back to the version before this one, on purpose. The running
/// version's entry is spent (the boot loaders take the previous one) and the version is
/// refused, so checks do not install it again; a newer release still will.
int rollback(const NodePaths& paths) {
  UpdateSettings settings = read_settings(paths, "");
  NodeState state(paths.state);
  FileLock lock(paths.state / "lock");
  EspMount esp(paths);
  if (std::string trial = state.trial_version();
      !trial.empty() && compare_image_versions(trial, settings.version) != 0) {
    remove_entry(esp.path(), trial);
    state.clear_trial();
    say("kiln-update: cancelled the staged version " + trial);
  }
  const LoaderEntry* previous = nullptr;
  auto entries = read_entries(esp.path());
  for (const auto& e : entries) {
    if (e.tries_left == 0 || compare_image_versions(e.version, settings.version) >= 0) continue;
    if (!previous || compare_image_versions(e.version, previous->version) > 0) previous = &e;
  }
  if (!previous) {
    say("kiln-update: no earlier version on this disk to roll back to");
    return kFailed;
  }
  std::string target = previous->version;
  retire_entry(esp.path(), settings.version);
  state.refuse(settings.version);
  state.clear_trial();
  say("kiln-update: rolling back from " + settings.version + " to " + target + "; " +
      settings.version + " will not be installed again");
  reboot_now(paths, "to roll back to " + target);
  return 0;
}

int reboot_command(const NodePaths& paths) {
  NodeState state(paths.state);
  if (state.trial_version().empty()) {
    say("kiln-update: nothing is staged; not rebooting");
    return kFailed;
  }
  reboot_now(paths, "to try version " + state.trial_version());
  return 0;
}

constexpr const char* kUsageText =
    "usage: kiln-update check|health|status|kubelet-config|--reboot|--rollback [--esp DIR] "
    "[--partitions DIR] "
    "[--state DIR]\n"
    "                   [--config FILE] [--keys DIR] [--cmdline FILE] [--health-timeout S] "
    "[--no-reboot]\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  NodePaths paths;
  std::string command;
  std::optional<int> health_timeout;
  // Paths a test (or an operator inspecting a copied disk) points elsewhere.
  const std::vector<std::pair<const char*, fs::path*>> path_flags = {
      {"--esp", &paths.esp},
      {"--partitions", &paths.partitions},
      {"--state", &paths.state},
      {"--config", &paths.config},
      {"--keys", &paths.trusted_keys},
      {"--cmdline", &paths.cmdline},
      {"--config-partition", &paths.config_partition},
      {"--reboot-required", &paths.reboot_required},
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto path_flag = std::find_if(path_flags.begin(), path_flags.end(),
                                  [&](const auto& flag) { return a == flag.first; });
    bool takes_value = path_flag != path_flags.end() || a == "--health-timeout";
    if (takes_value && i + 1 >= args.size()) {
      std::fprintf(stderr, "kiln-update: %s needs a value\n%s", a.c_str(), kUsageText);
      return kUsageError;
    }
    if (path_flag != path_flags.end()) {
      *path_flag->second = args[++i];
    } else if (a == "--health-timeout") {
      auto seconds = scan::parse_unsigned<int>(args[++i]);
      if (!seconds) {
        std::fprintf(stderr, "kiln-update: --health-timeout takes seconds\n%s", kUsageText);
        return kUsageError;
      }
      health_timeout = *seconds;
    } else if (a == "--no-reboot") {
      paths.no_reboot = true;
    } else if (command.empty() && (a == "--reboot" || a == "--rollback")) {
      command = a.substr(2);
    } else if (command.empty() && !a.empty() && a[0] != '-') {
      command = a;
    } else {
      std::fprintf(stderr, "kiln-update: unexpected argument '%s'\n%s", a.c_str(), kUsageText);
      return kUsageError;
    }
  }
  try {
    if (command == "check") return check(paths);
    if (command == "health") {
      // The unit reboots the machine when this fails: only an unhealthy trial may fail it.
      // Anything else that goes wrong is reported, and the boot goes on.
      try {
        return health(paths, health_timeout);
      } catch (const std::exception& e) {
        say(std::string("kiln-update: the health check could not run: ") + e.what() +
            "; not rebooting");
        return 0;
      }
    }
    if (command == "status") return status(paths);
    if (command == "kubelet-config") return upgrade_kubelet_config(paths, say);
    if (command == "reboot") return reboot_command(paths);
    if (command == "rollback") return rollback(paths);
    std::fputs(kUsageText, stderr);
    return kUsageError;
  } catch (const Refusal& e) {
    say(std::string("kiln-update: REFUSED: ") + e.what() + "; nothing was switched");
    return kRefused;
  } catch (const std::exception& e) {
    say(std::string("kiln-update: failed: ") + e.what() + "; the next check tries again");
    return kFailed;
  }
}
