#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace kiln::update {

/// What kiln-update remembers on the state partition (/var/lib/kiln/update), which every
/// version shares: the trial in progress, the versions that failed, and how far a download
/// got. Each file is replaced atomically, so a power cut leaves the old or the new content.
class NodeState {
 public:
  explicit NodeState(std::filesystem::path dir);

  /// The version staged for a trial boot and its slot ("" when none).
  std::string trial_version() const { return get("trial-version"); }
  std::string trial_slot() const { return get("trial-slot"); }
  void set_trial(const std::string& version, const std::string& slot);
  void clear_trial();

  /// Why the last trial boot was found unhealthy (kept for the rollback message).
  std::string trial_failure() const { return get("trial-failure"); }
  void set_trial_failure(const std::string& why) { set("trial-failure", why); }

  /// Versions that were rolled back: never tried again.
  std::vector<std::string> refused_versions() const;
  bool is_refused(const std::string& version) const;
  void refuse(const std::string& version);

  /// A slot write in progress: version, file role and bytes already on the slot and synced.
  struct Progress {
    std::string version, role;
    std::uint64_t bytes = 0;
  };
  Progress progress() const;
  void set_progress(const Progress& progress);
  void clear_progress();

 private:
  std::string get(const std::string& name) const;
  void set(const std::string& name, const std::string& value);
  std::filesystem::path dir_;
};

}  // namespace kiln::update
