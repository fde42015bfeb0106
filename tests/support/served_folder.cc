#include "support/served_folder.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <stdexcept>

#include "builder/util/files.h"

namespace kiln::test {
namespace fs = std::filesystem;

ServedFolder::ServedFolder(const fs::path& dir)
    : log_(fs::temp_directory_path() / "kiln-serve-XXXXXX") {
  std::string pattern = log_.string();
  int log_fd = ::mkstemp(pattern.data());
  log_ = pattern;
  int out[2];
  if (log_fd < 0 || ::pipe(out) != 0) throw std::runtime_error("cannot start kiln serve");
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(out[1], 1);
    ::dup2(log_fd, 2);
    ::close(out[0]);
    ::execl(KILN_BINARY, KILN_BINARY, "serve", dir.c_str(), "--listen", "127.0.0.1:0",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(log_fd);
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(out[0]);
  std::smatch m;
  if (!std::regex_search(line, m, std::regex(R"(http://127\.0\.0\.1:(\d+)/)")))
    throw std::runtime_error("kiln serve did not start: '" + line + "' " + log());
  port_ = std::stoi(m[1]);
}

ServedFolder::~ServedFolder() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  fs::remove(log_, ec);
}

std::string ServedFolder::base_url() const {
  return "http://10.0.2.2:" + std::to_string(port_);
}

std::string ServedFolder::guest_url(const std::string& path) const {
  return base_url() + "/" + path;
}

std::string ServedFolder::log() const {
  try {
    return read_file(log_);
  } catch (const std::exception&) {
    return {};
  }
}

std::string boot_ipxe_cmdline(const fs::path& folder, const std::string& base_url,
                              const std::string& extra) {
  std::string script = read_file(folder / "boot.ipxe");
  std::smatch m;
  if (!std::regex_search(script, m, std::regex(R"(\nkernel vmlinuz ([^\n]*))")))
    throw std::runtime_error("no kernel line in " + (folder / "boot.ipxe").string());
  std::string cmdline = std::regex_replace(std::string(m[1]), std::regex(R"(\$\{kiln-base\})"),
                                           base_url);
  return std::regex_replace(cmdline, std::regex(R"(\$\{kiln-args\})"), extra);
}

}  // namespace kiln::test
