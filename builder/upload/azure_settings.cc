#include "builder/upload/azure_settings.h"

#include "builder/util/error.h"
#include "builder/util/scan.h"

namespace kiln::azure {

namespace {

std::string trim_slashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

bool same_key(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (scan::to_lower(a[i]) != scan::to_lower(b[i])) return false;
  return true;
}

// Storage account names: 3 to 24 lower-case letters and digits.
bool valid_account(const std::string& name) {
  if (name.size() < 3 || name.size() > 24) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

}  // namespace

std::string connection_string_field(const std::string& text, const std::string& key) {
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(';', start);
    if (end == std::string::npos) end = text.size();
    std::string_view field(text.data() + start, end - start);
    std::size_t equals = field.find('=');  // values (base64 keys) may hold '=' themselves
    if (equals != std::string_view::npos && same_key(scan::trim(field.substr(0, equals)), key))
      return std::string(scan::trim(field.substr(equals + 1)));
    start = end + 1;
  }
  return "";
}

StorageSettings resolve_storage(const std::string& account, const std::string& blob_endpoint,
                                const Environment& environment, bool need_credentials) {
  StorageSettings settings;
  std::string connection = environment("AZURE_STORAGE_CONNECTION_STRING").value_or("");
  settings.account = account;
  if (settings.account.empty())
    settings.account = environment("AZURE_STORAGE_ACCOUNT").value_or("");
  if (settings.account.empty())
    settings.account = connection_string_field(connection, "AccountName");
  if (settings.account.empty()) {
    throw Error(
        "--storage-account is required (or AZURE_STORAGE_ACCOUNT, or a connection string in "
        "AZURE_STORAGE_CONNECTION_STRING)");
  }
  // Azurite's well-known development account is not a valid production name.
  if (!valid_account(settings.account) && settings.account != "devstoreaccount1")
    throw Error("--storage-account: '" + settings.account +
                "' is not a storage account name (3 to 24 lower-case letters and digits)");
  bool connection_for_account =
      !connection.empty() && connection_string_field(connection, "AccountName") == settings.account;
  settings.blob_endpoint = blob_endpoint;
  if (settings.blob_endpoint.empty() && connection_for_account)
    settings.blob_endpoint = connection_string_field(connection, "BlobEndpoint");
  if (settings.blob_endpoint.empty()) {
    std::string suffix = connection_for_account
                             ? connection_string_field(connection, "EndpointSuffix")
                             : std::string();
    settings.blob_endpoint =
        "https://" + settings.account + ".blob." + (suffix.empty() ? "core.windows.net" : suffix);
  }
  settings.blob_endpoint = trim_slashes(settings.blob_endpoint);
  if (settings.blob_endpoint.rfind("https://", 0) != 0 &&
      settings.blob_endpoint.rfind("http://", 0) != 0)
    throw Error("--blob-endpoint: expected an http:// or https:// URL");

  if (auto key = environment("AZURE_STORAGE_KEY")) {
    settings.account_key = *key;
    settings.source = "AZURE_STORAGE_KEY";
  } else if (auto sas = environment("AZURE_STORAGE_SAS_TOKEN")) {
    settings.sas_token = *sas;
    settings.source = "AZURE_STORAGE_SAS_TOKEN";
  } else if (connection_for_account) {
    settings.account_key = connection_string_field(connection, "AccountKey");
    settings.sas_token = connection_string_field(connection, "SharedAccessSignature");
    settings.source = "AZURE_STORAGE_CONNECTION_STRING";
  }
  if (!settings.sas_token.empty() && settings.sas_token.front() == '?')
    settings.sas_token.erase(0, 1);
  if (need_credentials && settings.account_key.empty() && settings.sas_token.empty()) {
    throw Error("no credential for storage account '" + settings.account +
                "': set AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or "
                "AZURE_STORAGE_CONNECTION_STRING");
  }
  return settings;
}

EntraSettings resolve_entra(const Environment& environment, bool need_credentials) {
  EntraSettings settings;
  settings.tenant_id = environment("AZURE_TENANT_ID").value_or("");
  settings.client_id = environment("AZURE_CLIENT_ID").value_or("");
  settings.client_secret = environment("AZURE_CLIENT_SECRET").value_or("");
  settings.federated_token_file = environment("AZURE_FEDERATED_TOKEN_FILE").value_or("");
  if (auto host = environment("AZURE_AUTHORITY_HOST"))
    settings.authority_host = trim_slashes(*host);
  settings.source = !settings.client_secret.empty()
                        ? "service principal (AZURE_CLIENT_SECRET)"
                        : "workload identity (AZURE_FEDERATED_TOKEN_FILE)";
  if (!need_credentials) return settings;
  if (settings.tenant_id.empty() || settings.client_id.empty() ||
      (settings.client_secret.empty() && settings.federated_token_file.empty())) {
    throw Error(
        "creating the image needs a Microsoft Entra service principal: set AZURE_TENANT_ID, "
        "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_FEDERATED_TOKEN_FILE); or pass "
        "--blob-only to upload the VHD alone");
  }
  for (char c : settings.tenant_id + settings.client_id) {
    bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.';
    if (!safe) throw Error("AZURE_TENANT_ID and AZURE_CLIENT_ID: unexpected characters");
  }
  return settings;
}

}  // namespace kiln::azure
