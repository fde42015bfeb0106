#include "builder/util/error.h"

#include <fmt/format.h>

namespace kiln {

std::string Error::render() const {
  if (!mark_.known()) return fmt::format("error: {}", what());
  std::string out =
      fmt::format("{}:{}:{}: error: {}", mark_.file, mark_.line, mark_.column, what());
  if (!source_line_.empty()) {
    out += fmt::format("\n  {}\n  {}^", source_line_, std::string(mark_.column - 1, ' '));
  }
  return out;
}

}  // namespace kiln
