#pragma once

#include <stdexcept>
#include <string>

namespace kiln {

/// A position in a recipe file, 1-based, as editors show it.
struct SourceMark {
  std::string file;
  int line = 0;
  int column = 0;
  bool known() const { return line > 0; }
};

/// `text` with everything shaped like a bootstrap token ("abcdef.0123456789abcdef", either
/// case) shown as "abcdef.****************": the id stays readable, the secret never does.
/// One pass, no backtracking.
std::string mask_bootstrap_tokens(std::string text);

/// An error meant for users: carries a position when one exists. Message and source line are
/// masked on construction (mask_bootstrap_tokens), so no error can carry a token's secret to
/// a terminal, journal or log, whatever input it quotes.
class Error : public std::runtime_error {
 public:
  explicit Error(std::string message)
      : std::runtime_error(mask_bootstrap_tokens(std::move(message))) {}
  Error(SourceMark mark, std::string message, std::string source_line = {})
      : std::runtime_error(mask_bootstrap_tokens(std::move(message))),
        mark_(std::move(mark)),
        source_line_(mask_bootstrap_tokens(std::move(source_line))) {}

  const SourceMark& mark() const { return mark_; }
  /// The recipe line the error points into, used to draw a caret under the column.
  const std::string& source_line() const { return source_line_; }
  /// "file:line:col: error: message" plus the source line and a caret, when known. A long
  /// line is cut to a window around the column.
  std::string render() const;

 private:
  SourceMark mark_;
  std::string source_line_;
};

/// A required download or cache entry is missing while running --offline.
class OfflineMiss : public Error {
 public:
  using Error::Error;
};

}  // namespace kiln
