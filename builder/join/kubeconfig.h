#pragma once

#include <filesystem>
#include <string>

namespace kiln {

/// The current context of a kubeconfig, resolved to what an HTTPS client needs. Kamaji puts
/// a TCP's admin kubeconfig in the secret `<tcp>-admin-kubeconfig` (key `admin.conf`).
struct Kubeconfig {
  std::string cluster_name;
  std::string server;           ///< https://host:port
  std::string ca_pem;           ///< certificate-authority(-data)
  std::string client_cert_pem;  ///< client-certificate(-data), when the user has one
  std::string client_key_pem;   ///< client-key(-data)
  std::string bearer_token;     ///< token, when the user has one
};

/// Reads the current context's cluster and user. Relative file references resolve against
/// the kubeconfig's directory. Throws kiln::Error saying what is missing.
Kubeconfig load_kubeconfig(const std::filesystem::path& file);
Kubeconfig parse_kubeconfig(const std::string& text, const std::filesystem::path& base_dir,
                            const std::string& source_name);

/// The first cluster of a kubeconfig without users or contexts, like kube-public/cluster-info's:
/// server and CA only (the user fields stay empty). The CA must be inline
/// (certificate-authority-data): a file named by a remote kubeconfig is refused, never read.
Kubeconfig parse_kubeconfig_cluster(const std::string& text, const std::string& source_name);

}  // namespace kiln
