#pragma once

namespace kiln {

/// Makes SIGINT, SIGTERM and SIGHUP clean up before the process dies: the signal is passed on
/// to running child commands (which are given a few seconds to exit), every registered
/// temporary path (TempPath, AtomicFile) is removed, and then the process dies of the same
/// signal, so its exit status still says what happened. Call once, early in main().
void remove_temporaries_on_signals();

}  // namespace kiln
