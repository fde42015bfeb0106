#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace kiln::cli {

/// Process exit codes, documented in the README.
enum class ExitCode {
  ok = 0,
  failed = 1,          ///< the build or a command failed (download, checksum, tool error)
  usage = 2,           ///< bad command line
  invalid_recipe = 3,  ///< the recipe has errors; each is printed as file:line:column
  offline_miss = 4,    ///< --offline and something is not in the cache
  not_verified = 5,    ///< kiln inspect: a root does not match its root hash
  cloud_refused = 6,   ///< kiln upload: the cloud refused a request (credentials, permissions)
};

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

ExitCode run_build(const std::vector<std::string>& args);
ExitCode run_validate(const std::vector<std::string>& args);
ExitCode run_plan(const std::vector<std::string>& args);
ExitCode run_binaries(const std::vector<std::string>& args);
ExitCode run_token(const std::vector<std::string>& args);
ExitCode run_stamp(const std::vector<std::string>& args);
ExitCode run_serve(const std::vector<std::string>& args);
ExitCode run_cache(const std::vector<std::string>& args);
ExitCode run_inspect(const std::vector<std::string>& args);
ExitCode run_upload(const std::vector<std::string>& args);
ExitCode run_version(const std::vector<std::string>& args);

}  // namespace kiln::cli
