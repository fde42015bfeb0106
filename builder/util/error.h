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

/// An error meant for users: carries a position when one exists.
class Error : public std::runtime_error {
 public:
  explicit Error(std::string message) : std::runtime_error(std::move(message)) {}
  Error(SourceMark mark, std::string message, std::string source_line = {})
      : std::runtime_error(std::move(message)),
        mark_(std::move(mark)),
        source_line_(std::move(source_line)) {}

  const SourceMark& mark() const { return mark_; }
  /// The recipe line the error points into, used to draw a caret under the column.
  const std::string& source_line() const { return source_line_; }
  /// "file:line:col: error: message" plus the source line and a caret, when known.
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
