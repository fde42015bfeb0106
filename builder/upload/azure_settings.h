#pragma once

// Where an Azure upload goes and how kiln proves who it is, read the way Azure's own tools
// take them: the storage account's key, a connection string or a SAS token for Blob storage,
// and a Microsoft Entra service principal (secret or workload identity) for Resource Manager.
#include <string>

#include "builder/util/environment.h"

namespace kiln::azure {

/// Blob storage: the account and one of its credentials. Only `account`, `blob_endpoint` and
/// `source` may ever be printed.
struct StorageSettings {
  std::string account;
  std::string blob_endpoint;  ///< https://ACCOUNT.blob.core.windows.net, no trailing slash
  std::string account_key;    ///< base64; signs requests with SharedKey
  std::string sas_token;      ///< without its leading '?'
  std::string source;         ///< "AZURE_STORAGE_KEY", "AZURE_STORAGE_CONNECTION_STRING"…
};

/// The storage account from --storage-account (else AZURE_STORAGE_ACCOUNT or the connection
/// string's AccountName) and its credential: AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or
/// AZURE_STORAGE_CONNECTION_STRING (AccountKey or SharedAccessSignature). The endpoint is
/// --blob-endpoint, else the connection string's BlobEndpoint, else the public cloud's.
/// `need_credentials` false (a dry run) skips the credential. Throws UsageError naming what
/// is missing, never a secret.
StorageSettings resolve_storage(const std::string& account, const std::string& blob_endpoint,
                                const Environment& environment, bool need_credentials = true);

/// A Microsoft Entra service principal, as Azure's SDKs read it from the environment.
struct EntraSettings {
  std::string tenant_id, client_id;
  std::string client_secret;         ///< AZURE_CLIENT_SECRET: a secret
  std::string federated_token_file;  ///< AZURE_FEDERATED_TOKEN_FILE (workload identity)
  std::string authority_host = "https://login.microsoftonline.com";
  std::string source;
};

/// AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE;
/// AZURE_AUTHORITY_HOST for another cloud. Throws UsageError naming what is missing.
EntraSettings resolve_entra(const Environment& environment, bool need_credentials = true);

/// One `key=value;…` connection string field (keys compared without case), or "".
std::string connection_string_field(const std::string& text, const std::string& key);

}  // namespace kiln::azure
