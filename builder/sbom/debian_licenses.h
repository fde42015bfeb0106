#pragma once

#include <set>
#include <string>
#include <string_view>

namespace kiln {

/// The SPDX identifier for one Debian licence short name (DEP-5: "GPL-2+", "Expat",
/// "BSD-3-clause"...), or "" when SPDX has none for it.
std::string spdx_license_id(std::string_view debian_name);

/// The declared licence of a package as an SPDX expression, from its machine-readable
/// (DEP-5) copyright file: the licence of its "Files: *" paragraph. Names SPDX does not list
/// become LicenseRef-… identifiers, added to `refs` (the document defines each once).
/// "NOASSERTION" when the file is not machine-readable or names no licence for all files.
std::string declared_license(std::string_view copyright, std::set<std::string>& refs);

/// `text` with every character an SPDX identifier does not allow (anything but letters,
/// digits, '.' and '-') replaced by '-'.
std::string spdx_id_text(std::string_view text);

/// "LicenseRef-" plus the name with every character SPDX does not allow replaced by '-'.
std::string license_ref(std::string_view debian_name);

}  // namespace kiln
