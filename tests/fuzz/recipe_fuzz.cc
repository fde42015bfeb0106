// libFuzzer harness: the recipe parser (load_recipe) on arbitrary YAML. A RecipeErrors is the
// parser's refusal; rendering each error (source line and caret) is part of what is tested.
// Anything else escaping, a sanitizer report or a leak is a failure.

#include <cstdint>

#include "builder/recipe/recipe_parser.h"
#include "fuzz_input.h"

namespace {

// A second recipe beside the input, so `include: common.yaml` (and include cycles through
// the input itself, `include: recipe.yaml`) reach the include code.
constexpr const char* kCommon = R"(base:
  suite: trixie
packages: [curl]
sysctl:
  net.ipv4.ip_forward: "1"
)";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path recipe = [] {
    kiln::fuzz::write_text(kiln::fuzz::private_directory() / "common.yaml", kCommon);
    return kiln::fuzz::private_directory() / "recipe.yaml";
  }();
  kiln::fuzz::write_text(recipe, kiln::fuzz::as_text(data, size));
  try {
    kiln::load_recipe(recipe);
  } catch (const kiln::RecipeErrors& refused) {
    for (const auto& error : refused.errors()) (void)error.render();
  }
  return 0;
}
