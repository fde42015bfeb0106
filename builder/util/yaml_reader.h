#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "builder/util/error.h"
#include "builder/util/parse_errors.h"

namespace kiln {

/// Reads one YAML document and collects every problem in it with file:line:col and the source
/// line, for a ParseErrors at the end. Shared by the readers of kiln's input files.
class YamlReader {
 public:
  /// Rewrites a source line before any error quotes it (e.g. to hide a secret's value);
  /// it must keep the line's length so the caret still points at the column.
  using LineMask = std::function<std::string(std::string)>;

  YamlReader(std::string source_name, const std::string& text, LineMask mask = {});
  /// A reader whose errors go to `sink`, shared with the readers of other files (a recipe and
  /// its includes report together, in the order they were found).
  YamlReader(std::string source_name, const std::string& text, std::vector<Error>& sink);

  /// The document, or nullopt after recording the syntax error.
  std::optional<YAML::Node> load(const std::string& text);

  void error(const YAML::Mark& at, std::string message);
  void error(const YAML::Node& at, std::string message) { error(at.Mark(), std::move(message)); }

  /// The node's text; records "<what> must be a string" otherwise.
  std::optional<std::string> scalar(const YAML::Node& node, const std::string& what);

  /// Records every key of `map` not in `known`, with the closest known key as a suggestion.
  void check_keys(const YAML::Node& map, const std::vector<std::string>& known,
                  const std::string& section);

  /// A map of strings to strings (node may be absent: empty map). Each entry is handed to
  /// `check` (when given) with the key and value nodes, to validate in place.
  std::map<std::string, std::string> string_map(
      const YAML::Node& node, const std::string& what,
      const std::function<void(const YAML::Node& key, const YAML::Node& value)>& check = {});

  bool ok() const { return sink_->empty(); }
  /// Throws ParseErrors with everything recorded so far, if anything was.
  void throw_if_errors();

 private:
  std::string source_;
  std::vector<std::string> lines_;
  LineMask mask_;
  std::vector<Error> errors_;
  std::vector<Error>* sink_ = &errors_;
};

/// `value` in single quotes for a message; a long one is cut to 80 characters and its length
/// given, so a 100 KB value is named, not printed.
std::string quote_value(const std::string& value);

/// `line` with the value of every `key:` in it (block or flow style, quoted or not) replaced by
/// '*' up to the next ',' or '}' or the end of the line. Same length as `line`.
std::string mask_key_value(std::string line, const std::string& key);

}  // namespace kiln
