#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <clocale>
#include <cstdlib>

int main(int argc, char** argv) {
  std::setlocale(LC_ALL, "C.UTF-8");  // as kiln's own main does
  // Compositions made in-process install the first-boot agent the build put beside kiln.
  ::setenv("KILN_FIRSTBOOT_DIR", KILN_FIRSTBOOT_DIR, 0);
  return Catch::Session().run(argc, argv);
}
