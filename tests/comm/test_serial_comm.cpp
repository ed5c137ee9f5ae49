// SerialComm: the world of one rank satisfies the whole Communicator contract.
#include "comm_checks.hpp"
#include "sfm/comm/serial.hpp"
#include "sfm_test.hpp"

static_assert(sfm::Communicator<sfm::SerialComm>);

static_assert(!sfm::test::ReducesBf16<sfm::SerialComm>, "bf16 moves but never reduces (gradients reduce in fp32)");

TEST_CASE("SerialComm passes the communicator checks") {
  sfm::SerialComm comm;
  CHECK(comm.rank() == 0);
  CHECK(comm.size() == 1);
  sfm::test::Expect expect;
  sfm::test::check_everything(comm, expect);
  for (const auto& failure : expect.failures) FAIL_CHECK(failure);
}

TEST_CASE("SerialComm send_recv to itself needs equal sizes") {
  sfm::SerialComm comm;
  std::vector<float> a(3), b(4);
  CHECK_THROWS_WITH(comm.send_recv(std::span(a), 0, std::span(b), 0), sfm::test::contains("send_recv"));
}
