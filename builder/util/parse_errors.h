#pragma once

#include <string>
#include <vector>

#include "builder/util/error.h"

namespace kiln {

/// Every problem found in one input file (a recipe, a join config), reported together, each
/// with its file:line:col; what() is the first.
class ParseErrors : public Error {
 public:
  explicit ParseErrors(std::vector<Error> errors)
      : Error(errors.empty() ? std::string("invalid input") : errors.front().what()),
        errors_(std::move(errors)) {}
  const std::vector<Error>& errors() const { return errors_; }
  /// Each error rendered (position, masked source line, caret), one after another.
  std::string render_all() const {
    std::string out;
    for (const auto& error : errors_) out += (out.empty() ? "" : "\n") + error.render();
    return out;
  }

 private:
  std::vector<Error> errors_;
};

}  // namespace kiln
