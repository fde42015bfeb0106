#include "support/qemu_vm.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "builder/disk/gpt.h"
#include "builder/util/files.h"
#include "builder/util/process.h"

namespace kiln::test {
namespace fs = std::filesystem;

namespace {

const char* kOvmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const char* kOvmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd";
// Debian's qemu-efi-aarch64: EDK2 for qemu's virt machine, both already 64 MiB pflash images.
const char* kAavmfCode = "/usr/share/AAVMF/AAVMF_CODE.fd";
const char* kAavmfVars = "/usr/share/AAVMF/AAVMF_VARS.fd";

constexpr const char* kProbeUnit = R"([Unit]
Description=kiln test probe
After=multi-user.target containerd.service kiln-grow-state.service ssh.service

[Service]
Type=oneshot
ExecStart=/etc/kiln-probe.sh
StandardOutput=tty
StandardError=tty
TTYPath=/dev/{tty}

[Install]
WantedBy=multi-user.target
)";

std::string probe_unit(const std::string& tty) {
  std::string unit = kProbeUnit;
  return unit.replace(unit.find("{tty}"), 5, tty);
}

// Runs in the initrd once the RAM /etc overlay is mounted.
constexpr const char* kProbeInstaller = R"sh(#!/bin/sh
set -e
mkdir -p /sysroot/etc/systemd/system/multi-user.target.wants
cat /kiln-test/kiln-probe.sh > /sysroot/etc/kiln-probe.sh
chmod 0755 /sysroot/etc/kiln-probe.sh
cat /kiln-test/kiln-probe.service > /sysroot/etc/systemd/system/kiln-probe.service
ln -sf /etc/systemd/system/kiln-probe.service \
    /sysroot/etc/systemd/system/multi-user.target.wants/kiln-probe.service
)sh";

constexpr const char* kProbeInstallerUnit = R"([Unit]
Description=kiln test probe installer
DefaultDependencies=no
After=sysroot-etc.mount
Requires=sysroot-etc.mount
Before=initrd.target

[Service]
Type=oneshot
ExecStart=/bin/sh /kiln-test/install-probe.sh
)";

void add_cpio_entry(archive* out, const std::string& path, mode_t type, mode_t mode,
                    const std::string& data = "", const std::string& link = "") {
  archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, path.c_str());
  archive_entry_set_filetype(entry, type);
  archive_entry_set_perm(entry, mode);
  archive_entry_set_size(entry, static_cast<la_int64_t>(data.size()));
  if (!link.empty()) archive_entry_set_symlink(entry, link.c_str());
  archive_write_header(out, entry);
  if (!data.empty()) archive_write_data(out, data.data(), data.size());
  archive_entry_free(entry);
}

}  // namespace

void write_probe_initrd(const fs::path& out, const std::string& script) {
  archive* writer = archive_write_new();
  archive_write_set_format_cpio_newc(writer);
  archive_write_add_filter_none(writer);
  if (archive_write_open_filename(writer, out.c_str()) != ARCHIVE_OK)
    throw std::runtime_error("cannot write " + out.string());
  add_cpio_entry(writer, "kiln-test", AE_IFDIR, 0755);
  add_cpio_entry(writer, "kiln-test/kiln-probe.sh", AE_IFREG, 0755, script);
  add_cpio_entry(writer, "kiln-test/kiln-probe.service", AE_IFREG, 0644, probe_unit("ttyS0"));
  add_cpio_entry(writer, "kiln-test/install-probe.sh", AE_IFREG, 0755, kProbeInstaller);
  for (const char* dir :
       {"etc", "etc/systemd", "etc/systemd/system", "etc/systemd/system/initrd.target.wants"})
    add_cpio_entry(writer, dir, AE_IFDIR, 0755);
  add_cpio_entry(writer, "etc/systemd/system/kiln-test-probe.service", AE_IFREG, 0644,
                 kProbeInstallerUnit);
  add_cpio_entry(writer, "etc/systemd/system/initrd.target.wants/kiln-test-probe.service", AE_IFLNK,
                 0777, "", "../kiln-test-probe.service");
  archive_write_close(writer);
  archive_write_free(writer);
}

void concatenate(const fs::path& first, const fs::path& second, const fs::path& out) {
  fs::copy_file(first, out, fs::copy_options::overwrite_existing);
  // Each archive starts 4-byte aligned, as the kernel's initramfs unpacker expects.
  std::string padding((4 - fs::file_size(first) % 4) % 4, '\0');
  std::ofstream(out, std::ios::binary | std::ios::app) << padding << read_file(second);
}

QemuVm::QemuVm(VmOptions options) : options_(std::move(options)) {
  const bool arm64 = options_.machine == Machine::arm64;
  if (arm64 && options_.firmware == Firmware::bios)
    throw std::invalid_argument("arm64 guests boot by UEFI, or from a kernel handed over");
  if (options_.firmware == Firmware::none && (!arm64 || options_.kernel.empty()))
    throw std::invalid_argument("Firmware::none is for a direct kernel boot of an arm64 guest");
  std::vector<std::string> argv = {
      arm64 ? "qemu-system-aarch64" : "qemu-system-x86_64",
      "-accel",
      "tcg",
      "-m",
      std::to_string(options_.memory_mb),
      "-smp",
      std::to_string(options_.cpus),
      "-display",
      "none",
      "-monitor",
      "none",
      "-serial",
      "file:" + options_.serial_log.string(),
      "-netdev",
      options_.tap.empty() ? "user,id=net0"
                           : "tap,id=net0,ifname=" + options_.tap + ",script=no,downscript=no",
      "-device",
      "virtio-net-pci,netdev=net0" + (options_.mac.empty() ? "" : ",mac=" + options_.mac)};
  if (arm64) {
    // Cortex-A72 (a Raspberry Pi 4's core): ARMv8.0, so TCG spends nothing on emulating
    // pointer authentication, which `-cpu max` would.
    argv.insert(argv.end(), {"-machine", "virt", "-cpu", "cortex-a72"});
  } else {
    // An emulated watchdog, so that systemd's RuntimeWatchdogSec resets a hung guest as a
    // hardware one would.
    argv.insert(argv.end(), {"-device", "i6300esb"});
  }
  if (!options_.allow_reboot) argv.push_back("-no-reboot");
  if (!options_.disk.empty()) {
    // Host write errors (a full disk) reach the guest as I/O errors on its console rather
    // than pausing the emulated machine without a word.
    std::string drive = "file=" + options_.disk.string() + ",format=" + options_.format +
                        ",werror=report,rerror=report";
    if (options_.logical_block_size) {
      std::string size = std::to_string(options_.logical_block_size);
      argv.insert(argv.end(), {"-drive", drive + ",if=none,id=disk0", "-device",
                               "virtio-blk-pci,drive=disk0,logical_block_size=" + size +
                                   ",physical_block_size=" + size});
    } else {
      argv.insert(argv.end(), {"-drive", drive + ",if=virtio"});
    }
  }
  if (!options_.pxe_bootfile.empty()) {
    auto netdev = std::find(argv.begin(), argv.end(), "user,id=net0");
    *netdev += ",bootfile=" + options_.pxe_bootfile;
    argv.insert(argv.end(), {"-boot", "n"});
  }
  if (!options_.kernel.empty()) {
    argv.insert(argv.end(), {"-kernel", options_.kernel.string(), "-initrd",
                             options_.initrd.string(), "-append", options_.append});
  }
  if (options_.firmware == Firmware::uefi) {
    fs::path vars = options_.serial_log.string() + ".vars";
    fs::copy_file(arm64 ? kAavmfVars : kOvmfVars, vars, fs::copy_options::overwrite_existing);
    argv.insert(argv.end(), {"-drive",
                             std::string("if=pflash,format=raw,readonly=on,file=") +
                                 (arm64 ? kAavmfCode : kOvmfCode),
                             "-drive", "if=pflash,format=raw,file=" + vars.string()});
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  start_ = std::chrono::steady_clock::now();
  pid_ = ::fork();
  if (pid_ == 0) {
    int log = ::open((options_.serial_log.string() + ".qemu").c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                     0644);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  if (pid_ < 0) throw std::runtime_error("fork failed");
}

QemuVm::~QemuVm() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

std::string QemuVm::console() const {
  try {
    return read_file(options_.serial_log);
  } catch (const std::exception&) {
    return {};
  }
}

std::string QemuVm::failure_report() const {
  constexpr int kConsoleLines = 120;
  std::string report = "after " + std::to_string(static_cast<int>(seconds_since_start())) +
                       " s; qemu " + (exited_ ? "has exited" : "is still running");
  std::error_code ec;
  auto space = fs::space(options_.serial_log.parent_path(), ec);
  if (!ec) report += "; " + std::to_string(space.available >> 20) + " MiB free on the host disk";
  std::string qemu_log;
  try {
    qemu_log = read_file(options_.serial_log.string() + ".qemu");
  } catch (const std::exception&) {
  }
  if (!qemu_log.empty()) report += "\nqemu said:\n" + qemu_log;
  std::string log = console();
  std::size_t start = log.size();  // ends at a newline, or 0 for the whole log
  const int newlines = kConsoleLines + (log.ends_with('\n') ? 1 : 0);
  for (int found = 0; found < newlines && start > 0; ++found) {
    std::size_t newline = log.rfind('\n', start - 1);
    start = newline == std::string::npos ? 0 : newline;
  }
  if (start > 0) ++start;
  report +=
      "\nthe console's last " + std::to_string(kConsoleLines) + " lines:\n" + log.substr(start);
  return report;
}

double QemuVm::seconds_since_start() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

bool QemuVm::panicked_before_init() const {
  std::string log = console();
  auto panic = log.find("Kernel panic - not syncing");
  return panic != std::string::npos &&
         log.rfind("Run /init as init process", panic) == std::string::npos;
}

bool QemuVm::wait_for(const std::string& pattern, std::chrono::seconds timeout) {
  std::regex re(pattern);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string log = console();
    if (std::regex_search(log, re)) return true;
    // A panicked kernel never prints anything else; waiting out the timeout only hides it.
    if (log.find("end Kernel panic") != std::string::npos) return false;
    if (!exited_ && ::waitpid(pid_, nullptr, WNOHANG) == pid_) exited_ = true;
    if (exited_) return std::regex_search(console(), re);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return false;
}

bool QemuVm::wait_exit(std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!exited_ && std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_)
      exited_ = true;
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return exited_;
}

std::map<std::string, std::string> probe_results(const std::string& console) {
  std::map<std::string, std::string> results;
  std::regex line(R"(KILN-PROBE ([a-z_]+)=([^\r\n]*))");
  for (auto it = std::sregex_iterator(console.begin(), console.end(), line);
       it != std::sregex_iterator(); ++it)
    results[(*it)[1]] = (*it)[2];
  return results;
}

void install_probe(const fs::path& raw_image, const std::string& script, const std::string& tty) {
  GptDisk disk = read_gpt(raw_image);
  const GptPartition& state = find_partition(disk, "state", raw_image);
  fs::path staging = raw_image.string() + ".probe";
  fs::create_directories(staging);
  write_file_atomic(staging / "kiln-probe.sh", script, 0755);
  write_file_atomic(staging / "kiln-probe.service", probe_unit(tty));
  std::string commands =
      "cd /lib/kiln/etc/upper\n"
      "mkdir systemd\nmkdir systemd/system\nmkdir systemd/system/multi-user.target.wants\n"
      "write " +
      (staging / "kiln-probe.sh").string() +
      " kiln-probe.sh\n"
      "write " +
      (staging / "kiln-probe.service").string() +
      " systemd/system/kiln-probe.service\n"
      "symlink systemd/system/multi-user.target.wants/kiln-probe.service "
      "/etc/systemd/system/kiln-probe.service\n";
  write_file_atomic(staging / "debugfs.cmd", commands);
  run({"debugfs", "-w", "-f", (staging / "debugfs.cmd").string(),
       raw_image.string() + "?offset=" + std::to_string(state.offset)},
      {.quiet = true});
  fs::remove_all(staging);
}

}  // namespace kiln::test
