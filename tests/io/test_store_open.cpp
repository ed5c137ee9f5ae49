// open_store: each URL form opens the right store; other schemes fail clearly.
#include <filesystem>

#include "sfm/io/open_store.hpp"
#include "sfm_test.hpp"

using namespace sfm::io;
namespace fs = std::filesystem;

TEST_CASE("open_store picks the store from the URL", "[io][store]") {
  const fs::path root = sfm::test::scratch_dir("store_open");
  {
    const auto store = open_store(root.string());
    CHECK(dynamic_cast<FileStore*>(store.get()));
    store->set("k", Bytes{std::byte{1}});
    CHECK(open_store("file://" + root.string())->get({"k"}) == Bytes{std::byte{1}});
  }
  CHECK(open_store("relative/x.zarr")->describe() == "file://" + (fs::current_path() / "relative/x.zarr").string());

  const auto http = open_store("http://127.0.0.1:9/data/x.zarr/");
  CHECK(dynamic_cast<HttpStore*>(http.get()));
  CHECK(http->describe() == "http://127.0.0.1:9/data/x.zarr");
  CHECK(dynamic_cast<HttpStore*>(open_store("https://example.org/x.zarr").get()));

  const auto s3 = open_store("s3://bucket/some/prefix/");
  CHECK(dynamic_cast<S3Store*>(s3.get()));
  CHECK(s3->describe() == "s3://bucket/some/prefix");
  CHECK(open_store("s3://bucket")->describe() == "s3://bucket");
}

TEST_CASE("open_store refuses what it cannot open", "[io][store]") {
  CHECK_THROWS_WITH(open_store(""), sfm::test::contains("empty store URL"));
  CHECK_THROWS_WITH(open_store("gs://bucket/x"), sfm::test::contains("unsupported scheme 'gs'") && sfm::test::contains("s3://"));
  CHECK_THROWS_WITH(open_store("file://relative/x"), sfm::test::contains("absolute path"));
  CHECK_THROWS_WITH(open_store("s3://"), sfm::test::contains("names no bucket"));
  CHECK_THROWS_WITH(open_store("s3://bucket/../other"), sfm::test::contains("refused key"));
  CHECK_THROWS_WITH(open_store("http://h/x")->set("k", {}), sfm::test::contains("read-only"));
}
