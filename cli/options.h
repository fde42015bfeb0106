#pragma once

#include <map>
#include <string>
#include <vector>

namespace kiln::cli {

/// A command's flags, as declared once: used for parsing and for --help.
struct Flag {
  std::string names;  ///< "-o, --output"
  std::string value;  ///< "DIR"; empty for switches
  std::string help;
};

struct ParsedArgs {
  std::map<std::string, std::string> values;  ///< by long name without dashes
  std::vector<std::string> positional;
  bool help = false;
  bool has(const std::string& name) const { return values.count(name) != 0; }
  std::string get(const std::string& name, const std::string& fallback = {}) const;
};

/// Parses args against flags; throws UsageError naming an unknown flag or missing value.
ParsedArgs parse_args(const std::vector<std::string>& args, const std::vector<Flag>& flags);

/// Seconds in a duration like 90s, 30m, 2h or 14d; throws UsageError naming `flag`.
long long parse_duration(const std::string& flag, const std::string& text);

/// "usage: kiln build RECIPE [options]" plus one line per flag.
std::string render_help(const std::string& synopsis, const std::string& description,
                        const std::vector<Flag>& flags);

}  // namespace kiln::cli
