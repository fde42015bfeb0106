#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "builder/recipe/recipe.h"
#include "builder/util/error.h"
#include "builder/util/parse_errors.h"

namespace kiln {

/// Every problem found in a recipe, reported together; what() is the first.
using RecipeErrors = ParseErrors;

/// Reads a recipe and its includes into a validated Recipe. Throws RecipeErrors.
Recipe load_recipe(const std::filesystem::path& file);

/// Parses recipe text that is not (or not yet) a file: `source_name` names it in errors and
/// is the base of its relative includes and overlays. `sources` lists only the included files.
/// Throws RecipeErrors.
Recipe parse_recipe(const std::string& text, const std::filesystem::path& source_name);

/// One line per recipe key with its help text, from the same table the parser uses, then
/// one line per output format (output_formats.h).
std::string describe_recipe_keys();

}  // namespace kiln
