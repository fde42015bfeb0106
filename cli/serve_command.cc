// kiln serve: a PXE output folder over HTTP, for labs and tests (production uses nginx).
#include <pthread.h>
#include <signal.h>

#include <charconv>
#include <cstdio>
#include <thread>

#include "builder/serve/file_server.h"
#include "builder/util/error.h"
#include "cli/commands.h"
#include "cli/options.h"

namespace kiln::cli {
namespace {

const std::vector<Flag> kServeFlags = {
    {"--listen", "HOST:PORT",
     "address to listen on (default 127.0.0.1:8080; IPv6 as [::1]:8080; port 0: any free one)"},
    {"--max-connections", "N",
     "connections served at once, default " + std::to_string(kDefaultMaxConnections) +
         "; more get 503"},
    {"--max-per-client", "N",
     "connections at once from one client address (IPv6: one /64), default " +
         std::to_string(kDefaultMaxConnectionsPerClient) + "; more get 503"},
    {"--head-timeout", "DURATION",
     "time a client has to send a request head, default 10s; then 408"},
};

int positive_count(const ParsedArgs& parsed, const std::string& name, int fallback) {
  if (!parsed.has(name)) return fallback;
  const std::string text = parsed.get(name);
  int value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 1 || value > 100000) {
    throw UsageError("--" + name + " '" + text + "': expected a number from 1 to 100000");
  }
  return value;
}

ListenAddress listen_address(const ParsedArgs& parsed) {
  try {
    return parse_listen_address(parsed.get("listen", "127.0.0.1:8080"));
  } catch (const Error& e) {
    throw UsageError(std::string("--listen: ") + e.what());
  }
}

}  // namespace

ExitCode run_serve(const std::vector<std::string>& args) {
  ParsedArgs parsed = parse_args(args, kServeFlags);
  if (parsed.help) {
    std::fputs(render_help("kiln serve DIR [--listen HOST:PORT] [limits]",
                           "Serves a PXE output folder over HTTP/1.1, read-only: GET and HEAD, "
                           "byte ranges, no\ndirectory listings (a folder's index.html is "
                           "served). Paths that would leave DIR,\nthrough '..' or a symlink, are "
                           "refused. A client has --head-timeout to send each request\nhead and "
                           "--max-per-client connections at once. Runs until interrupted (Ctrl-C "
                           "or\nSIGTERM); logs one line per request to standard error.",
                           kServeFlags)
                   .c_str(),
               stdout);
    return ExitCode::ok;
  }
  if (parsed.positional.size() != 1) throw UsageError("kiln serve needs exactly one DIR");
  const std::string& folder = parsed.positional[0];
  FileServerOptions options;
  options.folder = folder;
  options.listen = listen_address(parsed);
  options.max_connections = positive_count(parsed, "max-connections", kDefaultMaxConnections);
  options.max_connections_per_client =
      positive_count(parsed, "max-per-client", kDefaultMaxConnectionsPerClient);
  if (parsed.has("head-timeout")) {
    long long seconds = parse_duration("--head-timeout", parsed.get("head-timeout"));
    if (seconds < 1) throw UsageError("--head-timeout: must be at least 1s");
    options.timeouts.request_head = std::chrono::seconds(seconds);
  }

  // Blocked before any thread starts, so every thread inherits the mask and the signals wait
  // for sigwait below instead of killing the process mid-response.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  FileServer server(options);
  std::printf("kiln: serving %s at %s\n", folder.c_str(), server.url().c_str());
  std::fflush(stdout);
  int received = 0;
  std::thread on_signal([&] {
    ::sigwait(&stop_signals, &received);
    server.stop();
  });
  server.run();
  on_signal.join();
  std::fprintf(stderr, "kiln: stopped serving %s (%s)\n", folder.c_str(),
               received == SIGINT ? "SIGINT" : "SIGTERM");
  return ExitCode::ok;
}

}  // namespace kiln::cli
