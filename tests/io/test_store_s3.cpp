// SigV4 against AWS's published vectors (the get-vanilla family of the SigV4 test suite and the
// S3 documentation's GET/PUT object examples), and S3Store against moto_server on loopback with
// authentication on: objects uploaded by boto3 read back whole, ranged and suffix-ranged; signed
// PUTs read back through get_many; a wrong secret or unknown key is refused with S3's own error;
// anonymous reads; the AWS_* environment.
#include <cstdlib>

#include "servers/servers.hpp"
#include "sfm/io/open_store.hpp"
#include "sfm/io/sigv4.hpp"
#include "sfm/io/store_file.hpp"
#include "sfm/io/store_s3.hpp"
#include "sfm_test.hpp"

using namespace sfm::io;
namespace fs = std::filesystem;

TEST_CASE("SigV4 reproduces the get-vanilla family of AWS's test suite", "[io][store][s3]") {
  // aws-sig-v4-test-suite: credentials, date, region and service common to the family.
  const sigv4::Credentials credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  const auto request = [](sigv4::Headers query) {
    return sigv4::Request{"GET", "/", std::move(query),
                          {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
                          std::string(sigv4::kEmptyPayloadHash)};
  };
  const auto signature = [&](const sigv4::Request& r) {
    return sigv4::signature(r, credentials, "20150830T123600Z", "us-east-1", "service");
  };

  const sigv4::Request vanilla = request({});
  CHECK(sigv4::canonical_request(vanilla) ==
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sigv4::string_to_sign(vanilla, "20150830T123600Z", "us-east-1", "service") ==
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  CHECK(sigv4::authorization(vanilla, credentials, "20150830T123600Z", "us-east-1", "service") ==
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");

  CHECK(signature(request({{"Param2", "value2"}, {"Param1", "value1"}})) ==  // get-vanilla-query-order-key-case
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
  CHECK(signature(request({{"Param1", "value1"}})) ==  // get-vanilla-empty-query-key
        "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb");
  CHECK(signature(request({{"\xe1\x88\xb4", "bar"}})) ==  // get-vanilla-utf8-query
        "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
  const std::string unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  CHECK(signature(request({{unreserved, unreserved}})) ==  // get-vanilla-query-unreserved
        "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");

  sigv4::Request with_token = vanilla;  // get-vanilla-with-session-token
  with_token.headers.emplace_back("X-Amz-Security-Token", "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267");
  CHECK(sigv4::authorization(with_token, credentials, "20150830T123600Z", "us-east-1", "service") ==
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date;x-amz-security-token, "
        "Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
}

TEST_CASE("SigV4 reproduces the S3 documentation's GET and PUT object examples", "[io][store][s3]") {
  const sigv4::Credentials credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  const std::string host = "examplebucket.s3.amazonaws.com";
  const sigv4::Request get{"GET", "/test.txt", {},
                           {{"Host", host}, {"Range", "bytes=0-9"},
                            {"x-amz-content-sha256", std::string(sigv4::kEmptyPayloadHash)},
                            {"x-amz-date", "20130524T000000Z"}},
                           std::string(sigv4::kEmptyPayloadHash)};
  CHECK(sigv4::authorization(get, credentials, "20130524T000000Z", "us-east-1", "s3") ==
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");

  const std::string payload_hash = sigv4::sha256_hex("Welcome to Amazon S3.");
  CHECK(payload_hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  const sigv4::Request put{"PUT", "/" + uri_encode("test$file.text", true), {},
                           {{"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"Host", host},
                            {"x-amz-content-sha256", payload_hash}, {"x-amz-date", "20130524T000000Z"},
                            {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                           payload_hash};
  CHECK(put.path == "/test%24file.text");
  CHECK(sigv4::signature(put, credentials, "20130524T000000Z", "us-east-1", "s3") ==
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST_CASE("uri_encode keeps unreserved characters and, for paths, '/'", "[io][store][s3]") {
  CHECK(uri_encode("a b/c$d~e.f-g_h+i", true) == "a%20b/c%24d~e.f-g_h%2Bi");
  CHECK(uri_encode("a/b", false) == "a%2Fb");
  CHECK(uri_encode("\xe1\x88\xb4", false) == "%E1%88%B4");
  CHECK(sigv4::amz_date(std::chrono::sys_days{std::chrono::year{2015} / 8 / 30} + std::chrono::hours{12} +
                        std::chrono::minutes{36}) == "20150830T123600Z");
}

namespace {

Bytes pattern(size_t size, unsigned seed) {
  Bytes bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = std::byte((i * 29 + seed * 13 + i / 509) & 0xff);
  return bytes;
}

const std::string kBucket = "sfm-test";

// moto_server with an IAM user's key, authentication on, and boto3's uploads of `data` under
// s3://sfm-test/boto.
struct Moto {
  sfm::test::Server server;
  FileStore data;
  sigv4::Credentials credentials;

  S3Options options(std::string secret = "", std::string key_id = "") const {
    S3Options options;
    options.endpoint = server.url();
    options.credentials = sigv4::Credentials{key_id.empty() ? credentials.access_key_id : key_id,
                                             secret.empty() ? credentials.secret_access_key : secret, ""};
    options.http.max_attempts = 3;
    options.http.backoff_s = 0.05;
    options.http.timeout_s = 20;
    return options;
  }

  void set_auth(bool on) const {
    sfm::test::run_program({SFM_VENV_PYTHON, sfm::test::servers_dir() + "/moto_setup.py", server.url(), "auth",
                            on ? "on" : "off"},
                           sfm::test::scratch_dir("store_s3_auth") / "auth.log");
  }
};

// Turns moto's authentication off while it lives and back on when it dies, also when a request or
// an assertion throws in between, so that no later test meets a server that lets anyone in.
class AuthOff {
 public:
  explicit AuthOff(const Moto& moto) : moto_(moto) { moto_.set_auth(false); }
  AuthOff(const AuthOff&) = delete;
  AuthOff& operator=(const AuthOff&) = delete;
  ~AuthOff() {
    try {
      moto_.set_auth(true);
    } catch (const std::exception& e) {  // a destructor cannot throw; the later tests cannot run
      std::cerr << "cannot turn moto's authentication back on: " << e.what() << std::endl;
      std::abort();
    }
  }

 private:
  const Moto& moto_;
};

Moto& moto() {
  static Moto instance = [] {
    const fs::path work = sfm::test::scratch_dir("store_s3_moto");
    FileStore data(work / "data");
    data.set("zarr.json", pattern(321, 1));
    data.set("c/0/0/0", pattern(100'000, 2));
    data.set("c/0/0/1", pattern(2'500'000, 3));
    data.set("odd names/a b+c$d~e", pattern(77, 4));
    sfm::test::Server server = sfm::test::start_moto(work);
    const sfm::test::S3Key key = sfm::test::setup_moto_bucket(server, kBucket, "boto", work / "data", work);
    return Moto{std::move(server), std::move(data), {key.access_key_id, key.secret_access_key, ""}};
  }();
  return instance;
}

}  // namespace

TEST_CASE("S3Store reads boto3's uploads with signed requests", "[io][store][s3]") {
  S3Store s3("s3://" + kBucket + "/boto", moto().options());
  for (const std::string key : {"zarr.json", "c/0/0/0", "c/0/0/1", "odd names/a b+c$d~e"}) {
    const int64_t size = int64_t(moto().data.get({key})->size());
    for (const ByteRange range : {ByteRange{0, -1}, ByteRange{10, 20}, ByteRange{7, -1}, ByteRange{-64, -1},
                                  ByteRange{-100'000'000, -1}, ByteRange{size - 3, 50}}) {
      INFO(key << " [" << range.offset << ", " << range.length << "]");
      const StoreRequest request{key, range};
      CHECK(s3.get(request) == moto().data.get(request));
    }
    CHECK(s3.get({key}) == moto().data.get({key}));
  }
  CHECK(s3.get({"c/9/9/9"}) == std::nullopt);
  CHECK(s3.get({"c/9/9/9", ByteRange{-8, -1}}) == std::nullopt);
  CHECK_THROWS_WITH(s3.get({"c/../../other"}), sfm::test::contains("refused key"));
}

TEST_CASE("S3Store writes with signed PUTs and reads back through get_many", "[io][store][s3]") {
  S3Store s3("s3://" + kBucket + "/sfm/run 1", moto().options());
  std::vector<StoreRequest> requests;
  std::vector<std::optional<Bytes>> expected;
  for (int i = 0; i < 96; ++i) {
    const std::string key = "c/" + std::to_string(i / 10) + "/" + std::to_string(i % 10);
    const Bytes value = pattern(i == 0 ? 0 : i == 1 ? 3'000'000 : 500 + 97 * size_t(i), unsigned(i));
    if (i % 8 != 7) s3.set(key, value);  // every eighth key stays absent
    const bool ranged = i % 3 == 2;
    requests.push_back({key, ranged ? std::optional(ByteRange{-40, -1}) : std::nullopt});
    expected.push_back(i % 8 == 7 ? std::nullopt
                                  : std::optional(ranged ? Bytes(value.end() - 40, value.end()) : value));
  }
  CHECK(s3.get_many(requests) == expected);
  CHECK(s3.stats().peak_in_flight == 64);
  CHECK(s3.stats().retries == 0);
  // The same objects under their full names, through a store rooted at the bucket.
  S3Store bucket("s3://" + kBucket, moto().options());
  CHECK(bucket.get({"sfm/run 1/c/0/1"}) == expected[1]);
}

TEST_CASE("S3Store refuses a wrong secret or an unknown key with S3's own error", "[io][store][s3]") {
  S3Store wrong_secret("s3://" + kBucket + "/boto", moto().options("not-the-secret"));
  CHECK_THROWS_WITH(wrong_secret.get({"zarr.json"}),
                    sfm::test::contains("HTTP 403") && sfm::test::contains("SignatureDoesNotMatch") &&
                        sfm::test::contains("key 'zarr.json'") && sfm::test::contains("s3://sfm-test/boto") &&
                        !sfm::test::contains("attempts"));
  CHECK_THROWS_WITH(wrong_secret.set("x", pattern(10, 0)), sfm::test::contains("SignatureDoesNotMatch"));
  S3Store unknown_key("s3://" + kBucket + "/boto", moto().options("", "AKIAUNKNOWNKEY000000"));
  CHECK_THROWS_WITH(unknown_key.get({"zarr.json"}), sfm::test::contains("HTTP 403") && sfm::test::contains("InvalidAccessKeyId"));
  S3Store no_bucket("s3://no-such-bucket/x", moto().options());
  CHECK_THROWS_WITH(no_bucket.get({"zarr.json"}), sfm::test::contains("HTTP 404") && sfm::test::contains("NoSuchBucket"));
}

TEST_CASE("S3Store reads anonymously from a server that allows it", "[io][store][s3]") {
  S3Options anonymous = moto().options();
  anonymous.credentials.reset();
  const AuthOff open_server(moto());
  CHECK(S3Store("s3://" + kBucket + "/boto", anonymous).get({"c/0/0/0", ByteRange{-10, -1}}) ==
        moto().data.get({"c/0/0/0", ByteRange{-10, -1}}));
}

TEST_CASE("S3Options::from_env and open_store follow the AWS environment", "[io][store][s3]") {
  const std::vector<std::string> names = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                          "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
                                          "AWS_ENDPOINT_URL_S3", "AWS_NO_SIGN_REQUEST"};
  for (const std::string& name : names) ::unsetenv(name.c_str());
  S3Options options = S3Options::from_env();
  CHECK(options.region == "us-east-1");
  CHECK(options.endpoint.empty());
  CHECK(!options.credentials);

  ::setenv("AWS_DEFAULT_REGION", "eu-west-1", 1);
  ::setenv("AWS_ENDPOINT_URL", "http://general.invalid", 1);
  ::setenv("AWS_ACCESS_KEY_ID", moto().credentials.access_key_id.c_str(), 1);
  ::setenv("AWS_SESSION_TOKEN", "token", 1);
  CHECK_THROWS_WITH(S3Options::from_env(), sfm::test::contains("AWS_SECRET_ACCESS_KEY is not"));
  ::setenv("AWS_SECRET_ACCESS_KEY", moto().credentials.secret_access_key.c_str(), 1);
  options = S3Options::from_env();
  CHECK(options.region == "eu-west-1");
  CHECK(options.endpoint == "http://general.invalid");
  CHECK(options.credentials->session_token == "token");
  CHECK(S3Store("s3://b/p", options).url_of("k") == "http://general.invalid/b/p/k");
  CHECK(S3Store("s3://b", S3Options{}).url_of("a b") == "https://s3.us-east-1.amazonaws.com/b/a%20b");
  ::setenv("AWS_NO_SIGN_REQUEST", "YES", 1);
  CHECK(!S3Options::from_env().credentials);

  ::unsetenv("AWS_NO_SIGN_REQUEST");
  ::unsetenv("AWS_SESSION_TOKEN");
  ::setenv("AWS_REGION", "us-east-1", 1);
  ::setenv("AWS_ENDPOINT_URL_S3", moto().server.url().c_str(), 1);
  const auto store = open_store("s3://" + kBucket + "/boto");
  CHECK(store->get({"zarr.json"}) == moto().data.get({"zarr.json"}));
  for (const std::string& name : names) ::unsetenv(name.c_str());
}
