#include "builder/util/signals.h"

#include <signal.h>
#include <unistd.h>

#include "builder/util/files.h"
#include "builder/util/process.h"

namespace kiln {
namespace {

// Children get this long to act on the signal before SIGKILL: a child still writing could
// otherwise recreate a temporary after it was removed. Most exit at once; mmdebstrap first
// unmounts and removes a root tree of half a gigabyte, which a SIGKILL would leave behind.
constexpr int kChildGraceMs = 30000;

// Set once before any handler runs; a forked child that has not yet called exec inherits the
// handler and must not remove its parent's files.
pid_t owner = 0;

void on_signal(int signal) {
  if (::getpid() == owner) {
    running_children::stop_all(signal, kChildGraceMs);
    temp_registry::remove_registered();
  }
  // SA_RESETHAND restored the default action: die of the same signal once it is unblocked.
  ::raise(signal);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signal);
  ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace

void remove_temporaries_on_signals() {
  owner = ::getpid();
  struct sigaction action {};
  action.sa_handler = on_signal;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  // One cleanup at a time: the other signals wait until it is done (and then kill by default).
  for (int signal : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&action.sa_mask, signal);
  for (int signal : {SIGINT, SIGTERM, SIGHUP}) {
    // A signal ignored from the start (nohup, a background job) stays ignored.
    struct sigaction old {};
    if (::sigaction(signal, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    ::sigaction(signal, &action, nullptr);
  }
}

}  // namespace kiln
