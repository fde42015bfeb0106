// The builder's API client (libcurl) does not carry credentials across a redirect.
#include <catch2/catch.hpp>
#include <string>

#include "builder/fetch/http.h"
#include "support/http_server.h"

TEST_CASE("a redirect answering a request with credentials is an error, not followed") {
  kiln::test::HttpServer server;
  server.serve_raw("/api/v1/namespaces/kube-system/secrets",
                   {"HTTP/1.1 302 Found\r\nLocation: " + server.url("/elsewhere") +
                    "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"});
  server.serve("/elsewhere", "{}");
  kiln::http::Request call;
  call.method = "POST";
  call.url = server.url("/api/v1/namespaces/kube-system/secrets");
  call.body = "{}";
  call.bearer_token = "abcdef.0123456789abcdef";
  kiln::http::Response response = kiln::http::request(call);
  CHECK(response.status == 302);
  CHECK(response.error == "the server answered HTTP 302, a redirect to " +
                              server.url("/elsewhere") +
                              ", which a request carrying credentials does not follow (use the "
                              "final address as the kubeconfig's server)");
  CHECK(response.error.find("0123456789abcdef") == std::string::npos);
  CHECK(server.requests("/elsewhere") == 0);

  // Without credentials the redirect is reported as the answer it is, still not followed.
  call.bearer_token.clear();
  response = kiln::http::request(call);
  CHECK(response.error.empty());
  CHECK(response.status == 302);
  CHECK(server.requests("/elsewhere") == 0);
}

TEST_CASE("an API response body over the request's cap is an error") {
  kiln::test::HttpServer server;
  server.serve("/big", std::string(5000, 'x'));
  kiln::http::Request call;
  call.url = server.url("/big");
  call.max_response_bytes = 4096;
  auto response = kiln::http::request(call);
  CHECK(response.error == "the response body is larger than the 4096 bytes this request accepts");
  call.max_response_bytes = 5000;
  response = kiln::http::request(call);
  CHECK(response.error.empty());
  CHECK(response.body.size() == 5000);
}
