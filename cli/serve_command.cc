// kiln serve: a PXE output folder over HTTP, for labs and tests (production uses nginx).
#include <pthread.h>
#include <signal.h>

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
};

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
    std::fputs(render_help("kiln serve DIR [--listen HOST:PORT]",
                           "Serves a PXE output folder over HTTP/1.1, read-only: GET and HEAD, "
                           "byte ranges, no\ndirectory listings (a folder's index.html is "
                           "served). Paths that would leave DIR,\nthrough '..' or a symlink, are "
                           "refused. Runs until interrupted (Ctrl-C or SIGTERM);\nlogs one line "
                           "per request to standard error.",
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
