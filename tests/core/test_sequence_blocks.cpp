// SequenceBlocks (core/sequence_blocks.hpp): contiguous blocks that cover the sequence once, sizes
// within one of each other, padded to the largest, and owner() inverting start/valid.
#include "sfm/core/sequence_blocks.hpp"
#include "sfm_test.hpp"

TEST_CASE("SequenceBlocks partitions a sequence into balanced contiguous blocks") {
  for (int parts = 1; parts <= 8; ++parts)
    for (int64_t length = 0; length <= 60; ++length) {
      const sfm::SequenceBlocks blocks(length, parts);
      INFO("L " << length << ", parts " << parts);
      int64_t next = 0, largest = 0, smallest = length;
      for (int r = 0; r < parts; ++r) {
        REQUIRE(blocks.start(r) == next);
        REQUIRE(blocks.padding(r) >= 0);
        for (int64_t t = blocks.start(r); t < blocks.start(r) + blocks.valid(r); ++t) REQUIRE(blocks.owner(t) == r);
        next += blocks.valid(r);
        largest = std::max(largest, blocks.valid(r));
        smallest = std::min(smallest, blocks.valid(r));
      }
      CHECK(next == length);
      CHECK(blocks.rows() == largest);
      CHECK(largest - smallest <= 1);
    }
  const sfm::SequenceBlocks five(5, 4);  // 2, 1, 1, 1 in 2 rows each
  CHECK(five.valid(0) == 2);
  CHECK(five.valid(3) == 1);
  CHECK(five.start(3) == 4);
  CHECK(five.padding(3) == 1);
  CHECK_THROWS_WITH(sfm::SequenceBlocks(5, 0), sfm::test::contains("5 tokens in 0 blocks"));
}
