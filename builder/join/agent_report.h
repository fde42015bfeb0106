#pragma once

#include <string>

#include "builder/join/discovery.h"

namespace kiln {

/// What the first-boot agent concluded on this boot.
enum class AgentOutcome {
  installing,         ///< pxe.install is writing the image to a local disk
  installed,          ///< pxe.install wrote the image to a disk; the join happens from there
  install_failed,     ///< pxe.install could not write the image
  already_joined,     ///< a previous boot joined
  no_config,          ///< nothing to join with
  config_invalid,     ///< the join config does not parse
  token_expired,      ///< the token's expiry has passed
  waiting,            ///< the control plane does not answer yet; retrying
  discovery_refused,  ///< the control plane failed verification (signature, CA pin, TLS)
  joining,            ///< kubeadm join is running
  join_failed,        ///< kubeadm join failed; the next boot retries
  joined,             ///< this boot joined
  failed,             ///< anything else
};

/// The names a banner line may carry; every one is either kiln's own text or a validated name.
struct BannerFacts {
  std::string target;  ///< the control plane's name (validated) or endpoint
  std::string node;    ///< the node's name, once chosen
  std::string when;    ///< UTC time of the join
  std::string record;  ///< the agent's own record of an earlier join ("joined X as Y at T")
  DiscoveryFailure discovery = DiscoveryFailure::unreachable;  ///< for discovery_refused
};

/// The line for /etc/issue.d (shown before login to anyone at the console): a fixed reason for
/// the outcome and the names in `facts`, never an error's text, which may quote the join
/// config. The details go to the journal.
std::string banner_line(AgentOutcome outcome, const BannerFacts& facts = {});

/// One short, fixed phrase per discovery failure, for the banner.
const char* brief_reason(DiscoveryFailure failure);

}  // namespace kiln
