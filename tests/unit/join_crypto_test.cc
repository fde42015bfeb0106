// CA pins and cluster-info signatures checked against values computed by Kubernetes' own
// code (tests/vectors/upstream_vectors.go: kubeadm's pubkeypin and cluster-bootstrap's jws).
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "builder/join/bootstrap_token.h"
#include "builder/join/ca_pin.h"
#include "builder/join/jws.h"
#include "builder/util/base64.h"
#include "builder/util/files.h"

namespace fs = std::filesystem;

namespace {

const fs::path kUpstream = fs::path(KILN_TEST_DATA) / "upstream";

/// vectors.tsv rows whose first field is `kind`, split on tabs.
std::vector<std::vector<std::string>> vectors(const std::string& kind) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(kiln::read_file(kUpstream / "vectors.tsv"));
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> fields;
    std::istringstream row(line);
    for (std::string field; std::getline(row, field, '\t');) fields.push_back(field);
    if (!fields.empty() && fields[0] == kind) rows.push_back(fields);
  }
  return rows;
}

}  // namespace

TEST_CASE("CA pins match kubeadm's discovery-token-ca-cert-hash for RSA and ECDSA CAs") {
  auto rows = vectors("pin");
  REQUIRE(rows.size() == 2);
  for (const auto& row : rows) {
    INFO(row[1]);
    CHECK(kiln::ca_pin_from_pem(kiln::read_file(kUpstream / row[1])) == row[2]);
    CHECK(kiln::is_valid_ca_pin(row[2]));
  }
  CHECK_FALSE(kiln::is_valid_ca_pin("sha256:abc"));
  CHECK_FALSE(kiln::is_valid_ca_pin("md5:" + std::string(64, 'a')));
  CHECK_THROWS_WITH(kiln::ca_pin_from_pem("not a certificate"),
                    "the CA certificate is not a PEM-encoded X.509 certificate");
}

TEST_CASE("cluster-info signatures are byte-identical to bootstrapsigner's and verify") {
  std::string kubeconfig = kiln::read_file(kUpstream / "cluster-info.kubeconfig");
  auto rows = vectors("jws");
  REQUIRE(rows.size() == 2);
  for (const auto& row : rows) {
    INFO(row[1]);
    CHECK(kiln::compute_detached_jws(kubeconfig, row[1], row[2]) == row[3]);
    CHECK(kiln::verify_detached_jws(row[3], kubeconfig, row[1], row[2]) == kiln::JwsCheck::valid);
  }
}

TEST_CASE("tampered content, another token, a foreign key id or a mangled JWS are refused") {
  std::string kubeconfig = kiln::read_file(kUpstream / "cluster-info.kubeconfig");
  auto row = vectors("jws").at(0);
  const std::string& jws = row[3];
  std::string tampered = kubeconfig;
  tampered.replace(tampered.find("10.0.2.2"), 8, "10.6.6.6");  // a MITM's endpoint
  CHECK(kiln::verify_detached_jws(jws, tampered, row[1], row[2]) == kiln::JwsCheck::bad_signature);
  CHECK(kiln::verify_detached_jws(jws, kubeconfig, row[1], "ffffffffffffffff") ==
        kiln::JwsCheck::bad_signature);
  CHECK(kiln::verify_detached_jws(jws, kubeconfig, "zzzzzz", row[2]) ==
        kiln::JwsCheck::wrong_key_id);
  std::string none = kiln::base64url_encode("{\"alg\":\"none\",\"kid\":\"" + row[1] + "\"}") + "..";
  CHECK(kiln::verify_detached_jws(none, kubeconfig, row[1], row[2]) ==
        kiln::JwsCheck::wrong_algorithm);
  CHECK(kiln::verify_detached_jws("no-dots-here", kubeconfig, row[1], row[2]) ==
        kiln::JwsCheck::malformed);
  CHECK(kiln::verify_detached_jws("a.b.c", kubeconfig, row[1], row[2]) ==
        kiln::JwsCheck::malformed);
  std::string flipped = jws;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  CHECK(kiln::verify_detached_jws(flipped, kubeconfig, row[1], row[2]) != kiln::JwsCheck::valid);
}

TEST_CASE("bootstrap tokens have kubeadm's format, are random and mask their secret") {
  kiln::BootstrapToken a = kiln::generate_bootstrap_token();
  kiln::BootstrapToken b = kiln::generate_bootstrap_token();
  CHECK(kiln::parse_bootstrap_token(a.text()).has_value());
  CHECK(a.text() != b.text());
  CHECK(a.masked() == a.id + ".****************");
  auto parsed = kiln::parse_bootstrap_token("abcdef.0123456789abcdef");
  REQUIRE(parsed);
  CHECK(parsed->id == "abcdef");
  CHECK(parsed->secret == "0123456789abcdef");
  CHECK_FALSE(kiln::parse_bootstrap_token("ABCDEF.0123456789abcdef"));
  CHECK_FALSE(kiln::parse_bootstrap_token("abcdef0123456789abcdef"));
  CHECK_FALSE(kiln::parse_bootstrap_token("abcdef.0123456789abcde"));
}

TEST_CASE("base64 round-trips in both alphabets") {
  for (std::string data : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    CHECK(kiln::base64_decode(kiln::base64_encode(data)) == data);
    CHECK(kiln::base64url_decode(kiln::base64url_encode(data)) == data);
  }
  CHECK(kiln::base64_encode("foobar") == "Zm9vYmFy");
  CHECK(kiln::base64_encode("fo") == "Zm8=");
  CHECK(kiln::base64url_encode("\xfb\xff") == "-_8");
  CHECK_FALSE(kiln::base64_decode("Zm9v!"));
}

TEST_CASE("a huge or non-JSON JWS protected header is malformed, not a crash") {
  std::string kubeconfig = kiln::read_file(kUpstream / "cluster-info.kubeconfig");
  auto row = vectors("jws").at(0);
  std::string signature = row[3].substr(row[3].find("..") + 2);
  auto with_header = [&](const std::string& header) {
    return kiln::verify_detached_jws(kiln::base64url_encode(header) + ".." + signature, kubeconfig,
                                     row[1], row[2]);
  };
  // Sent by an unauthenticated cluster-info server: 30 KB of key id.
  CHECK(with_header("{\"alg\":\"HS256\",\"kid\":\"" + std::string(30000, 'a') + "\"}") ==
        kiln::JwsCheck::malformed);
  CHECK(with_header("{\"alg\":\"" + std::string(30000, 'x') + "\"}") == kiln::JwsCheck::malformed);
  CHECK(with_header("not json") == kiln::JwsCheck::malformed);
  CHECK(with_header("[\"alg\",\"HS256\"]") == kiln::JwsCheck::malformed);
  CHECK(with_header("{\"alg\":256,\"kid\":\"" + row[1] + "\"}") == kiln::JwsCheck::malformed);
  CHECK(with_header("{\"alg\":\"HS256\"}") == kiln::JwsCheck::malformed);
  // Within the size limit the fields still decide: field order and spacing do not matter.
  CHECK(with_header("{ \"kid\" : \"" + row[1] + "\", \"alg\" : \"HS512\" }") ==
        kiln::JwsCheck::wrong_algorithm);
  CHECK(with_header("{\"alg\":\"HS256\",\"kid\":\"" + std::string(2000, 'a') + "\"}") ==
        kiln::JwsCheck::wrong_key_id);
}

TEST_CASE("base64url decoding is strict, so a signature has exactly one encoding") {
  CHECK(kiln::base64url_decode("Zm9v") == "foo");
  CHECK(kiln::base64url_decode("Zm8") == "fo");
  CHECK(kiln::base64url_decode("Zg") == "f");
  CHECK(kiln::base64url_decode("") == "");
  CHECK_FALSE(kiln::base64url_decode("Zm8="));  // padding
  CHECK_FALSE(kiln::base64url_decode("Zg=="));
  CHECK_FALSE(kiln::base64url_decode("Zm9v\n"));  // line breaks
  CHECK_FALSE(kiln::base64url_decode("Zm\r\n9v"));
  CHECK_FALSE(kiln::base64url_decode("Zm9"));    // "fo" with a non-zero leftover bit
  CHECK_FALSE(kiln::base64url_decode("Zh"));     // "f" likewise
  CHECK_FALSE(kiln::base64url_decode("Zm9vY"));  // a lone sixth of a byte
  CHECK_FALSE(kiln::base64url_decode("Zm+v"));   // the standard alphabet's characters
  // Kubeconfig data fields keep standard base64 with padding and line breaks.
  CHECK(kiln::base64_decode("Zm9v\nYmE=") == "fooba");

  std::string kubeconfig = kiln::read_file(kUpstream / "cluster-info.kubeconfig");
  auto row = vectors("jws").at(0);
  const std::string& jws = row[3];
  REQUIRE(kiln::verify_detached_jws(jws, kubeconfig, row[1], row[2]) == kiln::JwsCheck::valid);
  // A 32-byte HMAC leaves two unused bits in the last character: setting them once made a
  // second valid spelling of the same signature.
  std::string respelled = jws;
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  respelled.back() = alphabet[alphabet.find(jws.back()) | 1];
  REQUIRE(respelled != jws);
  CHECK(kiln::verify_detached_jws(respelled, kubeconfig, row[1], row[2]) ==
        kiln::JwsCheck::malformed);
  CHECK(kiln::verify_detached_jws(jws + "=", kubeconfig, row[1], row[2]) ==
        kiln::JwsCheck::malformed);
}
