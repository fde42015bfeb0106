// kiln-update's boot entries: systemd-boot's boot counting names and order, GRUB's generated
// config and environment block, blessing and rollback detection, on an ESP folder.
#include "firstboot/update/boot_entries.h"

#include <catch2/catch.hpp>

#include "builder/util/files.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace kiln;
using namespace kiln::update;

namespace {

/// An ESP as `kiln build` writes it: version 1.0.0 blessed, GRUB beside systemd-boot.
fs::path make_esp(const fs::path& dir) {
  fs::path esp = dir / "esp";
  fs::create_directories(esp / "grub");
  write_file_atomic(esp / "kiln/vmlinuz", "kernel 1");
  write_file_atomic(esp / "kiln/initrd.img", "initrd 1");
  write_file_atomic(esp / "loader/entries/kiln-1.0.0.conf",
                    "title kiln worker 1.0.0\nsort-key kiln\nversion 1.0.0\nlinux /kiln/vmlinuz\n"
                    "initrd /kiln/initrd.img\noptions roothash=aaaa ro console=ttyS0\n");
  write_file_atomic(dir / "vmlinuz.new", "kernel 2");
  write_file_atomic(dir / "initrd.new", "initrd 2");
  return esp;
}

}  // namespace

TEST_CASE("entry names carry systemd-boot's counters and sort as systemd-boot sorts them",
          "[update]") {
  auto e = parse_entry("kiln-2.0.0+2-1.conf", "linux /k\noptions x\n");
  REQUIRE(e);
  CHECK(e->version == "2.0.0");
  CHECK(e->tries_left == 2);
  CHECK(e->tries_done == 1);
  CHECK(parse_entry("kiln-2.0.0.conf", "linux /k\noptions x\n")->tries_left == -1);
  CHECK_FALSE(parse_entry("other-2.0.0.conf", "linux /k\noptions x\n"));
  CHECK_FALSE(parse_entry("kiln-../x.conf", "linux /k\noptions x\n"));

  test::TempDir dir;
  fs::path esp = make_esp(dir.path());
  add_trial_entry(esp, "kiln worker 2.0.0", "2.0.0", dir.path() / "vmlinuz.new",
                  dir.path() / "initrd.new", "roothash=bbbb kiln.slot=b", 3);
  auto entries = read_entries(esp);
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].file == "kiln-2.0.0+3.conf");  // the trial first: newest, tries left
  CHECK(entries[1].file == "kiln-1.0.0.conf");
  CHECK(read_file(esp / "kiln/2.0.0/vmlinuz") == "kernel 2");
  // systemd-boot spends the tries by renaming; once none are left the trial sorts last.
  fs::rename(esp / "loader/entries/kiln-2.0.0+3.conf", esp / "loader/entries/kiln-2.0.0+0-3.conf");
  entries = read_entries(esp);
  CHECK(entries[0].file == "kiln-1.0.0.conf");
  CHECK(trial_exhausted(esp, "2.0.0"));
}

TEST_CASE("GRUB boots a trial while its environment block has tries, then the blessed entry",
          "[update]") {
  test::TempDir dir;
  fs::path esp = make_esp(dir.path());
  add_trial_entry(esp, "kiln worker 2.0.0", "2.0.0", dir.path() / "vmlinuz.new",
                  dir.path() / "initrd.new", "roothash=bbbb kiln.slot=b", 2);
  std::string env = read_file(esp / "grub/grubenv");
  CHECK(env.size() == 1024);
  CHECK(env.rfind("# GRUB Environment Block\n", 0) == 0);
  CHECK(grubenv_value(env, "kiln_trial") == "2.0.0");
  CHECK(grubenv_value(env, "kiln_tries") == "2");
  std::string cfg = read_file(esp / "grub/grub.cfg");
  CHECK_THAT(cfg, Catch::Contains("if [ \"${kiln_trial}\" = \"2.0.0\" ]; then"));
  CHECK_THAT(cfg, Catch::Contains("if [ \"${kiln_tries}\" = \"2\" ]; then\n    set kiln_tries=1\n"
                                  "    set default=kiln-trial\n"));
  CHECK_THAT(cfg, Catch::Contains("save_env -f ($root)/grub/grubenv kiln_tries"));
  CHECK_THAT(cfg, Catch::Contains("menuentry 'kiln worker 2.0.0' --id kiln-trial {\n  linux "
                                  "/kiln/2.0.0/vmlinuz roothash=bbbb kiln.slot=b\n"));
  CHECK_THAT(cfg, Catch::Contains("--id kiln-0 {\n  linux /kiln/vmlinuz roothash=aaaa"));
  CHECK_FALSE(trial_exhausted(esp, "2.0.0"));
  // What GRUB's save_env leaves after the last try.
  write_file_atomic(esp / "grub/grubenv",
                    render_grubenv({{"kiln_trial", "2.0.0"}, {"kiln_tries", "0"}}));
  CHECK(trial_exhausted(esp, "2.0.0"));

  bless_entry(esp, "2.0.0");
  auto entries = read_entries(esp);
  CHECK(entries[0].file == "kiln-2.0.0.conf");
  cfg = read_file(esp / "grub/grub.cfg");
  CHECK_THAT(cfg, !Catch::Contains("kiln-trial"));
  CHECK_THAT(cfg, Catch::Contains("--id kiln-0 {\n  linux /kiln/2.0.0/vmlinuz"));
  CHECK(grubenv_value(read_file(esp / "grub/grubenv"), "kiln_trial") == "");

  remove_entry(esp, "1.0.0");
  CHECK(read_entries(esp).size() == 1);
  CHECK_FALSE(fs::exists(esp / "kiln/vmlinuz"));  // the removed version's kernel goes too
  CHECK(fs::exists(esp / "kiln/2.0.0/vmlinuz"));
}
