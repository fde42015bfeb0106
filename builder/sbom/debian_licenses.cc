#include "builder/sbom/debian_licenses.h"

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

#include "builder/util/scan.h"

namespace kiln {

namespace {

// Debian's short names (copyright-format 1.0, and those common in trixie's files) with the
// SPDX identifiers they stand for. Matched without regard to case.
constexpr std::pair<std::string_view, std::string_view> kLicenses[] = {
    {"AGPL-3", "AGPL-3.0-only"},
    {"AGPL-3+", "AGPL-3.0-or-later"},
    {"Apache-2", "Apache-2.0"},
    {"Apache-2.0", "Apache-2.0"},
    {"Artistic", "Artistic-1.0-Perl"},
    {"Artistic-2.0", "Artistic-2.0"},
    {"BSD-2-clause", "BSD-2-Clause"},
    {"BSD-3-clause", "BSD-3-Clause"},
    {"BSD-4-clause", "BSD-4-Clause"},
    {"BSL-1.0", "BSL-1.0"},
    {"CC0", "CC0-1.0"},
    {"CC0-1.0", "CC0-1.0"},
    {"curl", "curl"},
    {"Expat", "MIT"},
    {"GFDL-1.2", "GFDL-1.2-only"},
    {"GFDL-1.2+", "GFDL-1.2-or-later"},
    {"GFDL-1.3", "GFDL-1.3-only"},
    {"GFDL-1.3+", "GFDL-1.3-or-later"},
    {"GPL", "GPL-1.0-or-later"},
    {"GPL-1", "GPL-1.0-only"},
    {"GPL-1+", "GPL-1.0-or-later"},
    {"GPL-2", "GPL-2.0-only"},
    {"GPL-2+", "GPL-2.0-or-later"},
    {"GPL-2.0", "GPL-2.0-only"},
    {"GPL-2.0+", "GPL-2.0-or-later"},
    {"GPL-3", "GPL-3.0-only"},
    {"GPL-3+", "GPL-3.0-or-later"},
    {"GPL-3.0", "GPL-3.0-only"},
    {"GPL-3.0+", "GPL-3.0-or-later"},
    {"ISC", "ISC"},
    {"LGPL-2", "LGPL-2.0-only"},
    {"LGPL-2+", "LGPL-2.0-or-later"},
    {"LGPL-2.1", "LGPL-2.1-only"},
    {"LGPL-2.1+", "LGPL-2.1-or-later"},
    {"LGPL-3", "LGPL-3.0-only"},
    {"LGPL-3+", "LGPL-3.0-or-later"},
    {"MIT", "MIT"},
    {"MPL-1.1", "MPL-1.1"},
    {"MPL-2.0", "MPL-2.0"},
    {"OpenSSL", "OpenSSL"},
    {"PSF-2", "PSF-2.0"},
    {"Python-2.0", "Python-2.0"},
    {"X11", "X11"},
    {"Zlib", "Zlib"},
    {"Unicode-DFS-2016", "Unicode-DFS-2016"},
    {"WTFPL", "WTFPL"},
    // Files that already use SPDX's own names, or Debian's variants of them.
    {"0BSD", "0BSD"},
    {"GFDL-NIV-1.3+", "GFDL-1.3-no-invariants-or-later"},
    {"GPL-2.0-only", "GPL-2.0-only"},
    {"GPL-2.0-or-later", "GPL-2.0-or-later"},
    {"GPL-3.0-only", "GPL-3.0-only"},
    {"GPL-3.0-or-later", "GPL-3.0-or-later"},
    {"LGPL-2.0+", "LGPL-2.0-or-later"},
    {"LGPL-2.0-or-later", "LGPL-2.0-or-later"},
    {"LGPL-2.1-only", "LGPL-2.1-only"},
    {"LGPL-2.1-or-later", "LGPL-2.1-or-later"},
    {"OpenSSH", "SSH-OpenSSH"},
    {"Sleepycat", "Sleepycat"},
};

// Lines are split at '\n' and lose a '\r' (a CRLF file); the rest is HTTP's whitespace rule.
using scan::iequals;
using scan::trim;

/// Splits "A or B" / "A and B" (Debian's words, any case) into the names and the operator;
/// the operator is empty for a single name, "mixed" when both appear.
std::pair<std::vector<std::string_view>, std::string> split_expression(std::string_view text) {
  std::vector<std::string_view> names;
  std::string op;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    for (std::string_view word : {std::string_view(" or "), std::string_view(" and ")}) {
      if (i + word.size() <= text.size() && iequals(text.substr(i, word.size()), word)) {
        names.push_back(trim(text.substr(start, i - start)));
        std::string this_op = word == " or " ? "OR" : "AND";
        op = op.empty() || op == this_op ? this_op : "mixed";
        start = i + word.size();
        i = start - 1;
        break;
      }
    }
  }
  names.push_back(trim(text.substr(start)));
  for (auto& name : names)
    while (!name.empty() && name.back() == ',') name = trim(name.substr(0, name.size() - 1));
  return {names, op};
}

}  // namespace

std::string spdx_license_id(std::string_view debian_name) {
  for (const auto& [debian, spdx] : kLicenses)
    if (iequals(debian, debian_name)) return std::string(spdx);
  return "";
}

std::string spdx_id_text(std::string_view text) {
  std::string out;
  for (char c : text)
    out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '-';
  return out;
}

std::string license_ref(std::string_view debian_name) {
  return "LicenseRef-" + spdx_id_text(debian_name);
}

std::string declared_license(std::string_view copyright, std::set<std::string>& refs) {
  if (copyright.substr(0, 8) != "Format: ") return "NOASSERTION";
  // Paragraphs are separated by blank lines; the licence of "Files: *" applies to the package.
  bool in_all_files = false;
  while (!copyright.empty()) {
    auto newline = copyright.find('\n');
    std::string_view line = copyright.substr(0, newline);
    copyright.remove_prefix(newline == std::string_view::npos ? copyright.size() : newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim(line).empty()) {
      in_all_files = false;
      continue;
    }
    if (line.substr(0, 6) == "Files:") in_all_files = trim(line.substr(6)) == "*";
    if (!in_all_files || line.substr(0, 8) != "License:") continue;
    std::string_view text = trim(line.substr(8));
    if (text.empty()) return "NOASSERTION";
    auto [names, op] = split_expression(text);
    if (op == "mixed") return "NOASSERTION";  // precedence in Debian's syntax is not SPDX's
    std::string expression;
    for (auto name : names) {
      if (name.empty()) return "NOASSERTION";
      std::string id = spdx_license_id(name);
      if (id.empty()) {
        id = license_ref(name);
        refs.insert(id);
      }
      expression += (expression.empty() ? "" : " " + op + " ") + id;
    }
    return names.size() > 1 ? "(" + expression + ")" : expression;
  }
  return "NOASSERTION";
}

}  // namespace kiln
