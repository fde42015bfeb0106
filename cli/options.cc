#include "cli/options.h"

#include <fmt/format.h>

#include <regex>

#include "builder/recipe/suggest.h"
#include "cli/commands.h"

namespace kiln::cli {
namespace {

std::vector<std::string> split_names(const std::string& names) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < names.size()) {
    size_t end = names.find(',', start);
    if (end == std::string::npos) end = names.size();
    std::string name = names.substr(start, end - start);
    name.erase(0, name.find_first_not_of(' '));
    out.push_back(name);
    start = end + 1;
  }
  return out;
}

std::string long_name(const Flag& flag) {
  std::string last = split_names(flag.names).back();
  return last.substr(last.find_first_not_of('-'));
}

}  // namespace

long long parse_duration(const std::string& flag, const std::string& text) {
  static const std::regex pattern("^([0-9]{1,9})([smhd])$");
  std::smatch match;
  if (!std::regex_match(text, match, pattern))
    throw UsageError(flag + " '" + text + "': expected a duration like 30m, 2h or 14d");
  long long value = std::stoll(match[1]);
  switch (match[2].str()[0]) {
    case 'm':
      return value * 60;
    case 'h':
      return value * 3600;
    case 'd':
      return value * 86400;
    default:
      return value;
  }
}

std::string ParsedArgs::get(const std::string& name, const std::string& fallback) const {
  auto it = values.find(name);
  return it == values.end() ? fallback : it->second;
}

ParsedArgs parse_args(const std::vector<std::string>& args, const std::vector<Flag>& flags) {
  ParsedArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "-h" || arg == "--help") {
      parsed.help = true;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      parsed.positional.push_back(arg);
      continue;
    }
    std::string inline_value;
    bool has_inline = false;
    if (auto eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      inline_value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_inline = true;
    }
    const Flag* match = nullptr;
    std::vector<std::string> known;
    for (const auto& flag : flags) {
      for (const auto& name : split_names(flag.names)) {
        known.push_back(name);
        if (name == arg) match = &flag;
      }
    }
    if (!match) {
      std::string hint = closest_match(arg, known);
      throw UsageError(fmt::format("unknown option '{}'{}", arg,
                                   hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
    if (match->value.empty()) {
      parsed.values[long_name(*match)] = "1";
    } else if (has_inline) {
      parsed.values[long_name(*match)] = inline_value;
    } else if (i + 1 < args.size()) {
      parsed.values[long_name(*match)] = args[++i];
    } else {
      throw UsageError(fmt::format("option '{}' needs a value ({})", arg, match->value));
    }
  }
  return parsed;
}

std::string render_help(const std::string& synopsis, const std::string& description,
                        const std::vector<Flag>& flags) {
  std::string out = "usage: " + synopsis + "\n\n" + description + "\n";
  if (!flags.empty()) out += "\nOptions:\n";
  for (const auto& flag : flags) {
    std::string left = flag.names + (flag.value.empty() ? "" : " " + flag.value);
    out += fmt::format("  {:<24} {}\n", left, flag.help);
  }
  out += fmt::format("  {:<24} {}\n", "-h, --help", "show this help");
  return out;
}

}  // namespace kiln::cli
