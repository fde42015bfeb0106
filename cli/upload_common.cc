#include "cli/upload_common.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "builder/disk/gpt.h"
#include "builder/fetch/cache.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/sha256.h"
#include "cli/commands.h"

namespace kiln::cli {
namespace fs = std::filesystem;

namespace {

std::string text_at(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

fs::path BuiltImage::output(const std::string& extension) const {
  fs::path file = dir / (name + "." + extension);
  return fs::is_regular_file(file) ? file : fs::path();
}

BuiltImage read_built_image(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw UsageError(dir.string() + " is not a folder");
  fs::path manifest = dir / "manifest.json";
  if (!fs::is_regular_file(manifest))
    throw UsageError(dir.string() + " has no manifest.json: give the folder `kiln build` wrote");
  auto doc = nlohmann::json::parse(read_file(manifest), nullptr, false);
  if (!doc.is_object() || text_at(doc, "name").empty() || !doc.contains("base") ||
      !doc["base"].is_object() || text_at(doc["base"], "arch").empty())
    throw Error(manifest.string() + " is not a kiln manifest");
  BuiltImage image;
  image.dir = dir;
  image.name = text_at(doc, "name");
  image.version = text_at(doc, "version");
  image.arch = text_at(doc["base"], "arch");
  image.distribution = text_at(doc["base"], "distribution");
  image.suite = text_at(doc["base"], "suite");
  if (doc.contains("kubernetes") && doc["kubernetes"].is_object())
    image.kubernetes_version = text_at(doc["kubernetes"], "version");
  image.raw = image.output("raw");
  if (!image.raw.empty()) {
    for (const auto& partition : read_gpt(image.raw).partitions)
      if (partition.name == "bios-boot") image.boots_by_bios = true;
  }
  return image;
}

std::vector<std::pair<std::string, std::string>> parse_key_values(const std::string& text,
                                                                  const std::string& what,
                                                                  std::size_t max_key) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = std::min(text.find(',', start), text.size());
    std::string item = text.substr(start, end - start);
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq > max_key || item.size() - eq - 1 > 256) {
      throw UsageError(fmt::format("{} '{}': expected key=value (key up to {} characters)", what,
                                   item, max_key));
    }
    pairs.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    start = end + 1;
  }
  if (pairs.size() > 50) throw UsageError(what + ": at most 50 entries");
  return pairs;
}

int parse_jobs(const ParsedArgs& parsed) {
  if (!parsed.has("jobs")) return 8;
  std::string jobs = parsed.get("jobs");
  if (jobs.empty() || jobs.size() > 2 ||
      jobs.find_first_not_of("0123456789") != std::string::npos || std::stoi(jobs) < 1 ||
      std::stoi(jobs) > 64)
    throw UsageError("--jobs: expected a number from 1 to 64");
  return std::stoi(jobs);
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = std::min(text.find(',', start), text.size());
    if (end > start) items.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return items;
}

void say(const std::string& line) {
  if (::isatty(STDERR_FILENO)) std::fputs("\r\033[K", stderr);
  log::info("    {}", line);
}

void show_transfer(std::uint64_t done, std::uint64_t total, std::uint64_t sent, double seconds) {
  if (!::isatty(STDERR_FILENO)) return;
  double rate = sent / std::max(seconds, 0.1);
  double done_rate = done / std::max(seconds, 0.1);
  double eta = done_rate > 0 ? (total - done) / done_rate : 0;
  std::fprintf(stderr, "\r    %s of %s done, %s sent (%s/s), about %.0f s left   ",
               log::human_bytes(done).c_str(), log::human_bytes(total).c_str(),
               log::human_bytes(sent).c_str(), log::human_bytes(rate).c_str(), eta);
}

fs::path journal_path(const std::string& cloud, const fs::path& file,
                      const std::string& target_key) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) throw Error("cannot read " + file.string());
  std::string key = fmt::format("{}\n{}\n{}.{}\n{}\n", fs::canonical(file).string(), st.st_size,
                                st.st_mtim.tv_sec, st.st_mtim.tv_nsec, target_key);
  return default_cache_dir() / "uploads" /
         (cloud + "-" + sha256_hex(key).substr(0, 32) + ".journal");
}

}  // namespace kiln::cli
