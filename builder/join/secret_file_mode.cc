#include "builder/join/secret_file_mode.h"

#include <fmt/format.h>
#include <sys/stat.h>

namespace kiln {

std::optional<std::string> readable_secret_warning(const std::filesystem::path& file,
                                                   const char* holds) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 || (st.st_mode & (S_IRGRP | S_IROTH)) == 0)
    return std::nullopt;
  const char* who = (st.st_mode & S_IROTH) ? "every user" : "its group";
  return fmt::format("{} holds {} and {} can read it (mode {:04o}); run: chmod 600 {}",
                     file.string(), holds, who, st.st_mode & 07777, file.string());
}

}  // namespace kiln
