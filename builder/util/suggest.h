#pragma once

#include <string>
#include <vector>

namespace kiln {

/// The candidate closest to `word` by edit distance, if close enough to be a likely typo.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace kiln
