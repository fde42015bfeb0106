#include "builder/util/yaml_reader.h"

#include <fmt/format.h>

#include <algorithm>

#include "builder/util/suggest.h"

namespace kiln {

YamlReader::YamlReader(std::string source_name, const std::string& text, LineMask mask)
    : source_(std::move(source_name)), mask_(std::move(mask)) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines_.push_back(text.substr(start, end - start));
    start = end + 1;
  }
}

YamlReader::YamlReader(std::string source_name, const std::string& text, std::vector<Error>& sink)
    : YamlReader(std::move(source_name), text) {
  sink_ = &sink;
}

std::optional<YAML::Node> YamlReader::load(const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    error(e.mark, "invalid YAML: " + e.msg);
  }
  return std::nullopt;
}

void YamlReader::error(const YAML::Mark& at, std::string message) {
  std::string line =
      at.line >= 0 && size_t(at.line) < lines_.size() ? lines_[size_t(at.line)] : std::string();
  if (mask_) line = mask_(std::move(line));
  int line_number = at.line >= 0 ? at.line + 1 : 1;
  int column = at.column >= 0 ? at.column + 1 : 1;
  sink_->emplace_back(SourceMark{source_, line_number, column}, std::move(message),
                      std::move(line));
}

std::optional<std::string> YamlReader::scalar(const YAML::Node& node, const std::string& what) {
  if (node.IsScalar()) return node.Scalar();
  error(node, fmt::format("{} must be a string", what));
  return std::nullopt;
}

void YamlReader::check_keys(const YAML::Node& map, const std::vector<std::string>& known,
                            const std::string& section) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    YAML::Node key = it->first;
    if (!key.IsScalar()) {
      error(key, "keys must be strings");
      continue;
    }
    const std::string& name = key.Scalar();
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    std::string hint = closest_match(name, known);
    error(key,
          fmt::format("unknown key '{}'{}{}", name, section.empty() ? "" : " in '" + section + "'",
                      hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
  }
}

std::map<std::string, std::string> YamlReader::string_map(
    const YAML::Node& node, const std::string& what,
    const std::function<void(const YAML::Node&, const YAML::Node&)>& check) {
  std::map<std::string, std::string> out;
  if (!node) return out;
  if (!node.IsMap()) {
    error(node, fmt::format("{} must be a map of strings", what));
    return out;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    YAML::Node key = it->first, value = it->second;
    auto key_text = scalar(key, what);
    auto value_text = scalar(value, what);
    if (!key_text || !value_text) continue;
    if (check) check(key, value);
    out[*key_text] = *value_text;
  }
  return out;
}

void YamlReader::throw_if_errors() {
  if (!sink_->empty()) throw ParseErrors(std::move(*sink_));
}

std::string quote_value(const std::string& value) {
  constexpr size_t kMaxQuoted = 80;
  if (value.size() <= kMaxQuoted) return "'" + value + "'";
  return fmt::format("'{}...' ({} characters)", value.substr(0, kMaxQuoted), value.size());
}

std::string mask_key_value(std::string line, const std::string& key) {
  if (key.empty()) return line;
  size_t from = 0;
  while ((from = line.find(key, from)) != std::string::npos) {
    size_t at = from + key.size();
    from = at;
    // The key may be quoted and followed by spaces before its colon.
    if (at < line.size() && (line[at] == '"' || line[at] == '\'')) ++at;
    while (at < line.size() && line[at] == ' ') ++at;
    if (at >= line.size() || line[at] != ':') continue;
    ++at;
    for (; at < line.size() && line[at] != ',' && line[at] != '}'; ++at) {
      if (line[at] != ' ' && line[at] != '"' && line[at] != '\'') line[at] = '*';
    }
    from = at;
  }
  return line;
}

}  // namespace kiln
