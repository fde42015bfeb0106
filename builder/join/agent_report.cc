#include "builder/join/agent_report.h"

#include <fmt/format.h>

namespace kiln {

namespace {

constexpr const char* kSeeJournal = "details: journalctl -u kiln-firstboot";

}  // namespace

const char* brief_reason(DiscoveryFailure failure) {
  switch (failure) {
    case DiscoveryFailure::unreachable:
      return "the control plane did not answer";
    case DiscoveryFailure::no_cluster_info:
      return "the control plane publishes no usable cluster-info";
    case DiscoveryFailure::token_unknown:
      return "the control plane does not know this token";
    case DiscoveryFailure::bad_signature:
      return "cluster-info is not signed for this token";
    case DiscoveryFailure::ca_mismatch:
      return "the control plane's CA does not match the pinned CA";
    case DiscoveryFailure::tls_mismatch:
      return "the control plane's TLS certificate is not from the pinned CA";
  }
  return "the control plane failed verification";
}

std::string banner_line(AgentOutcome outcome, const BannerFacts& facts) {
  // Names only reach here validated, but a banner is world-readable: mask regardless.
  std::string target = mask_bootstrap_tokens(facts.target.empty() ? "the cluster" : facts.target);
  std::string node = mask_bootstrap_tokens(facts.node);
  switch (outcome) {
    case AgentOutcome::installing:
      return fmt::format("kiln: installing onto a local disk ({})", kSeeJournal);
    case AgentOutcome::installed:
      return "kiln: installed onto a local disk; the node joins from there after the reboot";
    case AgentOutcome::install_failed:
      return fmt::format("kiln: installing onto a local disk failed ({})", kSeeJournal);
    case AgentOutcome::already_joined:
      return fmt::format("kiln: {} (already joined; nothing to do)",
                         mask_bootstrap_tokens(facts.record));
    case AgentOutcome::no_config:
      return "kiln: no join config: this node does not join a cluster";
    case AgentOutcome::config_invalid:
      return fmt::format("kiln: refusing to join: the join config is malformed ({})", kSeeJournal);
    case AgentOutcome::token_expired:
      return fmt::format("kiln: refusing to join {}: the bootstrap token has expired ({})", target,
                         kSeeJournal);
    case AgentOutcome::waiting:
      return fmt::format("kiln: waiting for {} to answer ({})", target, kSeeJournal);
    case AgentOutcome::discovery_refused:
      return fmt::format("kiln: refusing to join {}: {} ({})", target,
                         brief_reason(facts.discovery), kSeeJournal);
    case AgentOutcome::joining:
      return fmt::format("kiln: joining {} as {}", target, node);
    case AgentOutcome::join_failed:
      return fmt::format("kiln: kubeadm join to {} failed; the next boot retries ({})", target,
                         kSeeJournal);
    case AgentOutcome::joined:
      return fmt::format("kiln: joined {} as {} at {}", target, node, facts.when);
    case AgentOutcome::failed:
      break;
  }
  return fmt::format("kiln: first-boot join failed ({})", kSeeJournal);
}

}  // namespace kiln
