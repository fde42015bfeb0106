#include "builder/export/output_formats.h"

#include <catch2/catch.hpp>

#include "builder/plan/plan.h"
#include "builder/recipe/recipe_parser.h"

TEST_CASE("every output format in the table is a valid recipe output and decides the disk stage") {
  for (const auto& format : kiln::kOutputFormats) {
    std::string name(format.name);
    INFO(name);
    kiln::Recipe recipe = kiln::parse_recipe("name: w\noutputs: [" + name + "]\n", "inline.yaml");
    CHECK(recipe.outputs == std::vector<std::string>{name});
    CHECK(kiln::wants_disk(recipe) == format.needs_disk);
    if (!format.depends_on.empty()) CHECK(kiln::find_output_format(format.depends_on));
  }
  CHECK_FALSE(kiln::find_output_format("qcow3"));
}

TEST_CASE("kiln validate --help describes every recipe key and every output format") {
  std::string help = kiln::describe_recipe_keys();
  CHECK_THAT(help, Catch::Contains("  kernel                       Kernel: package, cmdline, "
                                   "omit_modules.\n"));
  CHECK_THAT(help, Catch::Contains("  pxe                          Netboot choices: install.\n"));
  CHECK_THAT(help, Catch::Contains("\n  pxe.install "));
  CHECK_THAT(help, Catch::Contains("  outputs                      Artifacts to produce (default "
                                   "rootfs): rootfs, raw, raw.zst, qcow2, vhd, vmdk, ova, gce, "
                                   "ami, pxe, update.\n"));
  for (const auto& format : kiln::kOutputFormats) {
    CHECK_THAT(help, Catch::Contains("\n  " + std::string(format.name) +
                                     std::string(29 - format.name.size(), ' ') +
                                     std::string(format.help) + "\n"));
  }
}
