// recipes/worker-arm64.yaml, built on this amd64 host (the build_arm64_image fixture): what is
// in its root, run through qemu-user, and its disk booted under qemu's arm64 `virt` machine
// with UEFI firmware, where it joins the shared control plane as an arm64 node.
#include <archive.h>
#include <archive_entry.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <regex>
#include <thread>

#include "builder/disk/gpt.h"
#include "builder/disk/guid.h"
#include "builder/disk/sparse_copy.h"
#include "builder/join/join_config.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "support/control_plane.h"
#include "support/qemu_vm.h"
#include "support/root_tamper.h"
#include "support/run_command.h"
#include "support/temp_dir.h"
#include "support/verified_root_probe.h"

namespace fs = std::filesystem;
using kiln::test::Firmware;
using kiln::test::Machine;
using kiln::test::QemuVm;

namespace {

const fs::path kImage = fs::path(KILN_TEST_IMAGES) / "worker-arm64";
// Every arm64 instruction is emulated on an amd64 core: a boot takes several times longer
// than an amd64 guest's.
constexpr auto kBootTimeout = std::chrono::seconds(2400);

kiln::test::CommandResult kiln_cli(const std::string& args) {
  return kiln::test::run_command(std::string(KILN_BINARY) + " " + args);
}

std::string file_type(const fs::path& path) {
  return kiln::run({"file", "-b", path.string()}, {.capture_stdout = true}).stdout_text;
}

/// The member of a (compressed) cpio initrd whose path is `name`, or "" when absent.
std::string initrd_member(const fs::path& initrd, const std::string& name) {
  std::unique_ptr<archive, decltype(&archive_read_free)> reader(archive_read_new(),
                                                                archive_read_free);
  archive_read_support_filter_all(reader.get());
  archive_read_support_format_cpio(reader.get());
  REQUIRE(archive_read_open_filename(reader.get(), initrd.c_str(), 1 << 16) == ARCHIVE_OK);
  archive_entry* entry = nullptr;
  while (archive_read_next_header(reader.get(), &entry) == ARCHIVE_OK) {
    std::string path = archive_entry_pathname(entry);
    if (path.starts_with("./")) path.erase(0, 2);
    if (path != name) continue;
    std::string data(static_cast<std::size_t>(archive_entry_size(entry)), '\0');
    REQUIRE(archive_read_data(reader.get(), data.data(), data.size()) ==
            static_cast<la_ssize_t>(data.size()));
    return data;
  }
  return "";
}

// Runs inside the guest after multi-user.target; the test reads its lines off the console.
const std::string kProbeScript = std::string(kiln::test::kVerifiedRootProbe) + R"sh(
say machine "$(uname -m)"
say firmware "$([ -d /sys/firmware/efi ] && echo uefi || echo none)"
say done yes
)sh";

}  // namespace

TEST_CASE(
    "the arm64 root holds aarch64 Kubernetes, containerd and kiln programs, which run under "
    "qemu-user, and its outputs are made for arm64 UEFI machines",
    "[arm64][image]") {
  kiln::test::TempDir work;
  const fs::path root = work.path() / "root";
  fs::create_directories(root);
  kiln::run({"tar", "-xf", (kImage / "rootfs.tar").string(), "-C", root.string()});

  // Every Kubernetes and kiln binary is built for aarch64 (kiln-netroot is in the initrd's
  // /usr/bin, where dracut's kiln-netroot module puts it).
  fs::path netroot = work.path() / "kiln-netroot";
  kiln::write_file_atomic(netroot,
                          initrd_member(kImage / "pxe/initrd.img", "usr/bin/kiln-netroot"));
  for (const fs::path& binary :
       {root / "usr/bin/kubelet", root / "usr/bin/kubeadm", root / "usr/bin/crictl",
        root / "usr/bin/containerd", root / "usr/sbin/runc", root / "usr/lib/kiln/kiln-firstboot",
        root / "usr/bin/kiln-update", netroot}) {
    INFO(binary);
    REQUIRE(fs::exists(binary));
    CHECK_THAT(file_type(binary),
               Catch::StartsWith("ELF 64-bit LSB") && Catch::Contains("ARM aarch64"));
  }

  // They run, through binfmt_misc and qemu-user, inside the root they were installed into.
  auto in_root = [&](const std::string& command) {
    auto result = kiln::test::run_command("chroot " + root.string() + " " + command);
    INFO(command << ": " << result.output);
    CHECK(result.exit_code == 0);
    return result.output;
  };
  CHECK_THAT(in_root("/usr/bin/kubelet --version"), Catch::Contains("Kubernetes v1.34.12"));
  CHECK_THAT(in_root("/usr/bin/kubeadm version -o short"), Catch::Contains("v1.34.12"));
  CHECK_THAT(in_root("/usr/bin/containerd --version"), Catch::Contains("containerd"));
  CHECK_THAT(in_root("/usr/bin/crictl --version"), Catch::Contains("crictl version v1.34.0"));
  CHECK_THAT(in_root("/usr/bin/kiln-update status --state /nonexistent"),
             Catch::Contains("image:    worker 1.0.0 (arm64)"));

  // The disk boots by UEFI only: systemd-boot for arm64, no BIOS boot partition, and the
  // root under the Discoverable Partitions type for arm64.
  kiln::GptDisk layout = kiln::read_gpt(kImage / "worker.raw");
  CHECK_THROWS(kiln::find_partition(layout, "bios-boot", kImage / "worker.raw"));
  CHECK(kiln::find_partition(layout, "root", kImage / "worker.raw").type ==
        kiln::partition_type::root_arm64);
  auto inspected = kiln_cli("inspect " + (kImage / "worker.raw.zst").string());
  INFO(inspected.output);
  CHECK(inspected.exit_code == 0);
  CHECK_THAT(inspected.output, Catch::Contains("name           worker 1.0.0 (arm64)"));
  CHECK_THAT(inspected.output, Catch::Contains("matches (dm-verity tree and data verified)"));
  CHECK_THAT(inspected.output, Catch::Contains("console=ttyAMA0"));
  const kiln::GptPartition& esp = kiln::find_partition(layout, "esp", kImage / "worker.raw");
  auto efi_boot = kiln::test::run_command("mdir -b -i " + (kImage / "worker.raw").string() + "@@" +
                                          std::to_string(esp.offset) + " ::/EFI/BOOT");
  INFO(efi_boot.output);
  CHECK_THAT(efi_boot.output, Catch::Contains("BOOTAA64.EFI"));
  CHECK_THAT(efi_boot.output, !Catch::Contains("BOOTX64.EFI"));
  CHECK(fs::exists(kImage / "worker.raw.bmap"));

  // The AMI is registered as arm64, UEFI; the netboot folder carries the arm64 kernel.
  std::string ami = kiln::read_file(kImage / "worker.register-ami.json");
  CHECK_THAT(ami, Catch::Contains("\"Architecture\": \"arm64\""));
  CHECK_THAT(ami, Catch::Contains("\"BootMode\": \"uefi\""));
  CHECK_THAT(file_type(kImage / "pxe/vmlinuz"), Catch::Contains("ARM64"));
  CHECK_THAT(kiln::read_file(kImage / "pxe/grub.cfg"), Catch::Contains("grubnetaa64.efi"));
  CHECK_THAT(file_type(kImage / "worker.qcow2"), Catch::Contains("QEMU QCOW"));
}

TEST_CASE(
    "the arm64 image, stamped with a token, boots under UEFI on qemu's arm64 virt machine with "
    "its verified root and joins the control plane as an arm64 node",
    "[arm64][boot]") {
  kiln::test::TempDir work;
  auto token = kiln_cli("token create --kubeconfig " + kiln::test::cp("ADMIN_KUBECONFIG") +
                        " --endpoint " + kiln::test::cp("GUEST_API_URL") +
                        " --name tenant-arm64 --ttl 60m --labels pool=arm64-edge -o " +
                        (work.path() / "join.yaml").string());
  INFO(token.output);
  REQUIRE(token.exit_code == 0);
  const std::string secret = kiln::load_join_config(work.path() / "join.yaml").token.secret;

  fs::path disk = work.path() / "node.raw";
  kiln::copy_sparse_atomic(kImage / "worker.raw", disk);
  kiln::test::install_probe(disk, kProbeScript, "ttyAMA0");
  auto stamp =
      kiln_cli("stamp " + disk.string() + " --join " + (work.path() / "join.yaml").string());
  INFO(stamp.output);
  REQUIRE(stamp.exit_code == 0);

  QemuVm vm({.machine = Machine::arm64,
             .disk = disk,
             .firmware = Firmware::uefi,
             .serial_log = work.path() / "console.log",
             .cpus = 2});
  bool joined = vm.wait_for("kiln: joined tenant-arm64 as [a-z0-9.-]+", kBootTimeout);
  bool probed = vm.wait_for("KILN-PROBE done=yes", std::chrono::seconds(600));
  INFO(vm.failure_report());
  REQUIRE(joined);
  REQUIRE(probed);
  const std::string console = vm.console();
  CHECK(console.find(secret) == std::string::npos);
  auto probe = kiln::test::probe_results(console);
  CHECK(probe.at("machine") == "aarch64");
  CHECK(probe.at("firmware") == "uefi");
  kiln::test::check_verified_root(probe);

  std::smatch match;
  REQUIRE(
      std::regex_search(console, match, std::regex("kiln: joined tenant-arm64 as ([a-z0-9.-]+)")));
  const std::string node = match[1];
  kiln::http::Response got;
  for (int i = 0; i < 120; ++i) {
    got = kiln::test::admin_get("/api/v1/nodes/" + node);
    if (got.status == 200) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  INFO(got.body);
  REQUIRE(got.status == 200);
  // The kubelet reports the architecture it runs on.
  CHECK_THAT(got.body, Catch::Contains("\"kubernetes.io/arch\":\"arm64\""));
  CHECK_THAT(got.body, Catch::Contains("\"architecture\":\"arm64\""));
  CHECK_THAT(got.body, Catch::Contains("\"pool\":\"arm64-edge\""));
}

TEST_CASE("an arm64 root altered by one byte is refused at boot", "[arm64][boot]") {
  kiln::test::TempDir work;
  fs::path disk = work.path() / "tampered.raw";
  kiln::copy_sparse_atomic(kImage / "worker.raw", disk);
  kiln::test::flip_root_byte(disk);

  QemuVm vm({.machine = Machine::arm64,
             .disk = disk,
             .firmware = Firmware::uefi,
             .serial_log = work.path() / "console.log"});
  bool refused = vm.wait_for("device-mapper: verity: .* is corrupted", kBootTimeout);
  INFO(vm.failure_report());
  CHECK(refused);
  vm.wait_for("Kernel panic", std::chrono::seconds(300));
  CHECK_THAT(vm.console(), Catch::Contains("Kernel panic"));
  CHECK_THAT(vm.console(), !Catch::Contains("login: "));
}
