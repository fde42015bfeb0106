#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::firstboot {

/// Where an http:// URL points.
struct HttpUrl {
  std::string host;
  std::string port = "80";
  std::string path = "/";
};

/// What kiln-netroot reads from a response head.
struct ResponseHead {
  int status = 0;
  std::optional<std::uint64_t> content_length;
  std::optional<std::uint64_t> range_start, range_total;  ///< from Content-Range of a 206
};

/// Parses a response head (status line and headers, without the blank line); throws
/// std::runtime_error on anything malformed (a failed attempt, retried like any other).
ResponseHead parse_response_head(std::string_view head);

/// Parses http://host[:port][/path]; throws std::runtime_error naming what is wrong (https://
/// included: the netboot root is checked by its hash, and the initrd carries no TLS stack).
HttpUrl parse_http_url(const std::string& url);

/// Mounts a tmpfs of its own on `dir`, just big enough for one file of `size` bytes: /run is
/// a fifth of RAM, too small for a root or disk image. Throws std::runtime_error naming `what`.
void mount_tmpfs_for(const std::filesystem::path& dir, std::uint64_t size, const std::string& what);

/// Downloads `url` into `target`, retrying for as long as it takes with a capped backoff and
/// resuming an interrupted transfer with a Range request. `prepare` is called once with the
/// size, before the first byte is written; `say` reports progress and each failed attempt.
/// Returns the size.
std::uint64_t download_with_retries(const std::string& url, const std::filesystem::path& target,
                                    const std::function<void(std::uint64_t)>& prepare,
                                    const std::function<void(const std::string&)>& say);

/// One GET of the bytes of `url` from `from` on (a Range request when `from` > 0), for a
/// resource the caller knows is `total` bytes long: refuses any other length or range.
/// Hands the body to `sink` as it arrives, in pieces of at most 1 MiB. Throws
/// std::runtime_error when the transfer fails or breaks off; the caller resumes from where
/// the sink got to.
void fetch_range(const HttpUrl& url, std::uint64_t from, std::uint64_t total,
                 const std::function<void(const char* data, std::size_t size)>& sink);

}  // namespace kiln::firstboot
