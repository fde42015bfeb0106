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

/// One line per recipe key with its help text, from the same table the parser uses.
std::string describe_recipe_keys();

/// The output formats a recipe's `outputs:` (or `kiln build --outputs`) may name.
const std::vector<std::string>& known_outputs();

}  // namespace kiln
