#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::test {

/// What starts the guest. `none` is for a direct kernel boot on the arm64 `virt` machine, where
/// qemu loads kernel, initrd and command line itself, as a board's own boot firmware does.
enum class Firmware { bios, uefi, none };

/// The emulated machine: a PC (qemu-system-x86_64), or an arm64 server board (qemu's `virt`
/// machine with Cortex-A72 cores, UEFI only; its console is the PL011 UART, ttyAMA0).
enum class Machine { amd64, arm64 };

struct VmOptions {
  Machine machine = Machine::amd64;
  std::filesystem::path disk;  ///< none: a diskless (netbooted) guest
  std::string format = "raw";
  Firmware firmware = Firmware::bios;
  std::filesystem::path serial_log;  ///< the guest's serial console
  /// Direct kernel boot, as a PXE loader would hand over: kernel, one initrd (several
  /// concatenated, as iPXE does) and the command line.
  std::filesystem::path kernel;
  std::filesystem::path initrd;
  std::string append;
  /// Network boot through the firmware's iPXE, which DHCP points at this URL.
  std::string pxe_bootfile;
  int memory_mb = 2048;
  int cpus = 1;
  /// A tap device to attach the NIC to (see TapNetwork) instead of qemu's user networking,
  /// which always answers DHCP.
  std::string tap;
  /// The NIC's MAC address (qemu's default when empty); nodes named by MAC need distinct ones.
  std::string mac;
  /// The disk's logical (and physical) block size when not 512: 4096 presents a 4Kn disk.
  int logical_block_size = 0;
  /// Keep running when the guest reboots (by default qemu exits, ending the test's boot).
  bool allow_reboot = false;
};

/// One qemu-system-x86_64 (or -aarch64) guest under software emulation (TCG; no KVM here), with
/// user networking (the host's loopback is 10.0.2.2 from inside) and its serial console in a file.
/// The guest is killed when the object goes away.
class QemuVm {
 public:
  explicit QemuVm(VmOptions options);
  ~QemuVm();
  QemuVm(const QemuVm&) = delete;
  QemuVm& operator=(const QemuVm&) = delete;

  /// Waits until the console log matches `pattern` (ECMAScript regex); false on timeout, when
  /// the guest exits first or when its kernel panicked.
  bool wait_for(const std::string& pattern, std::chrono::seconds timeout);
  /// Waits for qemu to exit (the guest powered off); false on timeout.
  bool wait_exit(std::chrono::seconds timeout);
  std::string console() const;
  /// For a failed wait: qemu's own messages, the free space where the guest's files live (a
  /// full host disk shows up in the guest as I/O errors) and the console's last lines, where
  /// whatever went wrong is.
  std::string failure_report() const;
  /// The guest kernel panicked before it started the initrd's init: a crash of the emulated
  /// machine's early boot (seen rarely with two vCPUs under TCG), not of anything in the image.
  bool panicked_before_init() const;
  double seconds_since_start() const;

 private:
  VmOptions options_;
  int pid_ = -1;
  bool exited_ = false;
  std::chrono::steady_clock::time_point start_;
};

/// Reads "KILN-PROBE key=value" lines the probe printed on the console into a map (the last
/// value of each key wins).
std::map<std::string, std::string> probe_results(const std::string& console);

/// Adds a oneshot unit to a kiln disk image's persistent /etc overlay (on its state
/// partition, written with debugfs; the verified root is untouched) that runs `script`
/// after multi-user.target on every boot. The script's output goes to the serial console,
/// `tty` (ttyAMA0 on arm64 guests).
void install_probe(const std::filesystem::path& raw_image, const std::string& script,
                   const std::string& tty = "ttyS0");

/// The same probe for a diskless (netbooted) guest: a cpio to append to its initrd, whose
/// initrd unit writes the probe into the RAM-backed /etc overlay before switch-root. Stands
/// in for what an operator adds to a netboot; the verified root is untouched.
void write_probe_initrd(const std::filesystem::path& out, const std::string& script);

/// `first` then `second`, concatenated into `out`: how PXE loaders hand several initrds over.
void concatenate(const std::filesystem::path& first, const std::filesystem::path& second,
                 const std::filesystem::path& out);

}  // namespace kiln::test
