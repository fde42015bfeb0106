// The Raspberry Pi boot pieces the disk stage and `kiln inspect` use: the firmware read out of
// Debian's raspi-firmware package, the Pi's command line, and config.txt's os_prefix.
#include "builder/disk/raspberry_pi.h"

#include <catch2/catch.hpp>

#include "builder/inspect/image_report.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

/// A .deb made by dpkg-deb holding `files` (path under the package root -> content).
fs::path make_deb(const fs::path& dir,
                  const std::vector<std::pair<std::string, std::string>>& files) {
  fs::path tree = dir / "tree";
  fs::create_directories(tree / "DEBIAN");
  kiln::write_file_atomic(tree / "DEBIAN/control",
                          "Package: raspi-firmware\nVersion: 1.0\nArchitecture: all\n"
                          "Maintainer: kiln tests <tests@example.org>\nDescription: test\n");
  for (const auto& [path, content] : files) {
    fs::create_directories((tree / path).parent_path());
    kiln::write_file_atomic(tree / path, content);
  }
  fs::path deb = dir / "raspi-firmware_all.deb";
  auto built = kiln::test::run_command("dpkg-deb --root-owner-group -Zxz --build " + tree.string() +
                                       " " + deb.string());
  INFO(built.output);
  REQUIRE(built.exit_code == 0);
  return deb;
}

std::string error_of(const fs::path& deb) {
  try {
    kiln::read_raspi_firmware(deb);
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("the Pi 4 firmware files are read out of a raspi-firmware package's data.tar") {
  kiln::test::TempDir dir;
  fs::path deb = make_deb(dir.path(), {{"usr/lib/raspi-firmware/start4.elf", "start4"},
                                       {"usr/lib/raspi-firmware/fixup4.dat", "fixup4"},
                                       {"usr/lib/raspi-firmware/start.elf", "older Pis"},
                                       {"usr/share/doc/raspi-firmware/copyright", "Broadcom"}});
  kiln::RaspiFirmware firmware = kiln::read_raspi_firmware(deb);
  CHECK(firmware.start_elf == "start4");
  CHECK(firmware.fixup_dat == "fixup4");
  CHECK(firmware.copyright == "Broadcom");
}

TEST_CASE("a package without the Pi 4 firmware, or a file that is no package, is refused by name") {
  kiln::test::TempDir dir;
  fs::path deb = make_deb(dir.path(), {{"usr/lib/raspi-firmware/start4.elf", "start4"}});
  CHECK(error_of(deb) == deb.string() +
                             " has no /usr/lib/raspi-firmware/fixup4.dat: is it Debian's "
                             "raspi-firmware package?");
  kiln::write_file_atomic(dir.path() / "page.html", "<html>not found</html>");
  CHECK_THAT(error_of(dir.path() / "page.html"),
             Catch::StartsWith((dir.path() / "page.html").string() + " is not a Debian package"));
}

TEST_CASE("the Pi's command line keeps the verified-root arguments and uses the Pi's consoles") {
  CHECK(kiln::raspberry_pi_cmdline("roothash=ab12 ro console=ttyS0 quiet console=ttyAMA0") ==
        "roothash=ab12 ro quiet console=tty0 console=ttyS1,115200");
}

TEST_CASE("config.txt's os_prefix is read only when it stays inside the boot partition") {
  CHECK(kiln::raspberry_pi_os_prefix("[all]\narm_64bit=1\nos_prefix=kiln/\n") == "kiln/");
  CHECK(kiln::raspberry_pi_os_prefix("arm_64bit=1\n") == "");
  CHECK(kiln::raspberry_pi_os_prefix("os_prefix=../etc/\n") == std::nullopt);
  CHECK(kiln::raspberry_pi_os_prefix("os_prefix=/abs/\n") == std::nullopt);
  kiln::LoaderEntry entry = kiln::raspberry_pi_entry("kiln/", "roothash=ab12 ro\nignored\n");
  CHECK(entry.loader == "raspberry-pi");
  CHECK(entry.cmdline == "roothash=ab12 ro");
}
