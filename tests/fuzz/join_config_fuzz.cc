// libFuzzer harness: the join-config parser, on its own and behind the agent's cloud user
// data reader (join_config_from_user_data), which hands what it finds to the same parser.
// Refusals are RecipeErrors; a parsed config must render to text that parses again; and no
// rendered error may contain a bootstrap token that appears in the input (the secret is never
// printed).

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "builder/join/join_config.h"
#include "builder/recipe/recipe_parser.h"
#include "firstboot/user_data.h"
#include "fuzz_input.h"

namespace {

bool token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/// Every "[a-z0-9]{6}.[a-z0-9]{16}" in `text` not run together with more token characters:
/// what kubeadm and kiln accept as a bootstrap token. A linear scan.
std::vector<std::string> tokens_in(const std::string& text) {
  std::vector<std::string> tokens;
  for (std::size_t dot = text.find('.'); dot != std::string::npos; dot = text.find('.', dot + 1)) {
    if (dot < 6 || dot + 17 > text.size()) continue;
    std::size_t begin = dot - 6, end = dot + 17;
    bool ok = (begin == 0 || !token_char(text[begin - 1])) &&
              (end == text.size() || !token_char(text[end]));
    for (std::size_t i = begin; ok && i < end; ++i) ok = i == dot || token_char(text[i]);
    if (ok) tokens.push_back(text.substr(begin, end - begin));
  }
  return tokens;
}

void parse(const std::string& text) {
  try {
    kiln::JoinConfig config = kiln::parse_join_config(text, "join.yaml");
    std::string rendered = kiln::render_join_config(config);
    try {
      kiln::parse_join_config(rendered, "rendered.yaml");
    } catch (const kiln::Error& e) {
      std::fprintf(stderr, "a parsed join config renders to text that does not parse: %s\n%s\n",
                   e.what(), rendered.c_str());
      std::abort();
    }
  } catch (const kiln::RecipeErrors& refused) {
    std::string shown;
    for (const auto& error : refused.errors()) shown += error.render() + "\n";
    for (const auto& token : tokens_in(text)) {
      if (shown.find(token) == std::string::npos) continue;
      std::fprintf(stderr, "a join-config error shows the bootstrap token:\n%s\n", shown.c_str());
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(kiln::fuzz::as_text(data, size));
  parse(text);
  if (auto embedded = kiln::firstboot::join_config_from_user_data(text)) parse(*embedded);
  return 0;
}
