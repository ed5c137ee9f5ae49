// ThreadComm: the communicator contract for P = 1..4 threads, the rank-order (bitwise) reduction
// invariant, real overlap of async operations, disagreeing ranks, and failing ranks that must fail
// the whole group without hanging.
#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "comm_checks.hpp"
#include "sfm/comm/thread.hpp"
#include "sfm_test.hpp"

using sfm::ThreadComm;
using sfm::test::Expect;

static_assert(sfm::Communicator<ThreadComm>);

namespace {

// Runs check(comm, expect) on P thread ranks and reports every rank's failures.
template <class Check>
void on_ranks(int P, Check check) {
  std::vector<Expect> expects(P);
  sfm::run_ranks(P, [&](ThreadComm& comm) { check(comm, expects[comm.rank()]); });
  for (int r = 0; r < P; ++r)
    for (const auto& failure : expects[r].failures) FAIL_CHECK("P=" << P << " rank " << r << ": " << failure);
}

}  // namespace

static_assert(!sfm::test::ReducesBf16<sfm::ThreadComm>, "bf16 moves but never reduces (gradients reduce in fp32)");

TEST_CASE("ThreadComm passes the communicator checks for P = 1..4") {
  for (int P = 1; P <= 4; ++P) {
    INFO("P = " << P);
    on_ranks(P, [&](ThreadComm& comm, Expect& expect) {
      expect(comm.size() == P, "size");
      sfm::test::check_everything(comm, expect);
    });
  }
}

TEST_CASE("ThreadComm reduces in rank order: reduce_scatter + all_gather == all_reduce, bit for bit") {
  for (int P = 1; P <= 4; ++P) {
    const std::size_t n = 1000 + P, m = (n + P - 1) / P;  // padded to P·m
    auto input = [](int rank, std::size_t i) {
      return float(std::sin(0.37 * double(i) + rank) * (1 + rank * 1e-3));
    };
    on_ranks(P, [&](ThreadComm& comm, Expect& expect) {
      const int r = comm.rank();
      std::vector<float> grad(P * m, 0.0f);
      for (std::size_t i = 0; i < n; ++i) grad[i] = input(r, i);
      std::vector<float> reduced(P * m), sharded = grad;
      comm.all_reduce(std::span<const float>(grad), std::span(reduced));
      comm.reduce_scatter(std::span<const float>(sharded), std::span(sharded).subspan(r * m, m));
      comm.all_gather(std::span<const float>(sharded).subspan(r * m, m), std::span(sharded));
      expect(std::memcmp(reduced.data(), sharded.data(), reduced.size() * sizeof(float)) == 0,
             "reduce_scatter + all_gather differs from all_reduce");
      for (std::size_t i = 0; i < n; ++i) {  // the documented order: ((x0 + x1) + x2) + x3 in float
        float acc = input(0, i);
        for (int q = 1; q < P; ++q) acc = acc + input(q, i);
        if (!expect(std::memcmp(&acc, &reduced[i], sizeof acc) == 0, "element ", i,
                    " not summed in rank order"))
          break;
      }
      std::vector<float> again(P * m);
      comm.all_reduce(std::span<const float>(grad), std::span(again));
      expect(again == reduced, "a repeated all_reduce differs");
    });
  }
}

TEST_CASE("ThreadComm async operations progress while the caller computes") {
  // Rank 0 starts an all_reduce and then computes without waiting; rank 1's blocking all_reduce
  // can only return if rank 0's worker took part meanwhile. Rank 0 computes until that happens (on
  // a busy machine that may take a while), giving up only after kHangLimit: then it never would.
  std::atomic<bool> peer_done{false};
  bool overlapped = false;
  sfm::run_ranks(2, [&](ThreadComm& comm) {
    std::vector<double> data(1 << 16, comm.rank() + 1.0);
    if (comm.rank() == 0) {
      auto handle = comm.all_reduce_async(std::span(data));
      const auto start = std::chrono::steady_clock::now();
      double sink = 0;
      while (!peer_done && std::chrono::steady_clock::now() - start < sfm::test::kHangLimit)
        for (int i = 0; i < 1000; ++i) sink += std::sqrt(double(i));
      overlapped = peer_done && sink > 0;
      handle.wait();
    } else {
      comm.all_reduce(std::span(data));
      peer_done = true;
    }
    if (data[7] != 3.0) throw std::runtime_error("wrong all_reduce result");
  });
  CHECK(overlapped);
}

TEST_CASE("ThreadComm ranks that disagree all raise an error and stay usable") {
  on_ranks(3, [](ThreadComm& comm, Expect& expect) {
    const int r = comm.rank();
    std::vector<float> a(r == 1 ? 6 : 5, 1.0f);
    expect.error([&] { comm.all_reduce(std::span(a)); }, {"all_reduce", "disagree", "rank 1", "6 float"},
                 "size disagreement");
    std::vector<double> d(5);
    expect.error([&] { r == 2 ? comm.all_reduce(std::span(d)) : comm.all_reduce(std::span(a).first(5)); },
                 {"disagree", "double"}, "type disagreement");
    expect.error([&] { r == 0 ? comm.barrier() : comm.broadcast(std::span(a).first(5), 0); },
                 {"disagree", "barrier", "broadcast"}, "operation disagreement");
    expect.error([&] { comm.broadcast(std::span(a).first(5), r == 2 ? 1 : 0); }, {"disagree", "root"},
                 "root disagreement");
    std::vector<float> send(4), recv(r == 0 ? 3 : 4);
    const int P = comm.size();
    if (r == 0)
      expect.error([&] { comm.send_recv(std::span(send), 1, std::span(recv), P - 1); },
                   {"send_recv", "sent 4"}, "receive size mismatch");
    else
      comm.send_recv(std::span(send), (r + 1) % P, std::span(recv), r - 1);
    sfm::test::check_all_reduce<float>(comm, expect, 7, sfm::ReduceOp::sum, false);
  });
}

TEST_CASE("A ThreadComm rank that throws fails the group without hanging") {
  for (int P : {2, 3, 4}) {
    // A group that hangs instead can never be joined: the watchdog ends the test run, naming it.
    const sfm::test::Watchdog watchdog("ThreadComm group of " + std::to_string(P) + " ranks with a failing rank");
    // Rank 1 throws; the others are blocked in (or later reach) a collective.
    CHECK_THROWS_WITH(sfm::run_ranks(P,
                                     [](ThreadComm& comm) {
                                       std::vector<float> a(10, 1.0f);
                                       if (comm.rank() == 1) throw std::runtime_error("boom in rank 1");
                                       comm.all_reduce(std::span(a));
                                       comm.barrier();
                                     }),
                      sfm::test::contains("boom in rank 1"));
    // Rank 0 throws with async operations in flight on the world and a split.
    CHECK_THROWS_WITH(sfm::run_ranks(P,
                                     [](ThreadComm& comm) {
                                       ThreadComm half = comm.split(comm.rank() % 2, 0);
                                       std::vector<float> a(1000, 1.0f), b(1000, 2.0f);
                                       auto h1 = comm.all_reduce_async(std::span(a));
                                       auto h2 = half.all_reduce_async(std::span(b));
                                       if (comm.rank() == 0) throw sfm::Error("rank 0 gave up");
                                       h1.wait();
                                       h2.wait();
                                       comm.barrier();  // rank 0 never arrives
                                     }),
                      sfm::test::contains("rank 0 gave up"));
    // The others see CommAborted, naming the failed rank.
    std::atomic<int> aborted{0};
    CHECK_THROWS(sfm::run_ranks(P, [&](ThreadComm& comm) {
      if (comm.rank() == P - 1) throw std::runtime_error("last rank failed");
      try {
        comm.barrier();
      } catch (const sfm::CommAborted& e) {
        if (std::string(e.what()).find("last rank failed") != std::string::npos) ++aborted;
        throw;
      }
    }));
    CHECK(aborted == P - 1);
  }
}

TEST_CASE("ThreadComm splits run independently of their parent") {
  on_ranks(4, [](ThreadComm& comm, Expect& expect) {
    ThreadComm dp = comm.split(comm.rank() % 2, comm.rank());
    ThreadComm cp = comm.split(comm.rank() / 2, comm.rank());
    std::vector<float> x(64, float(comm.rank())), y(64, 1.0f), z(64, 1.0f);
    auto hx = dp.all_reduce_async(std::span(x));
    auto hy = cp.all_reduce_async(std::span(y));
    comm.all_reduce(std::span(z));
    hy.wait();
    hx.wait();
    expect(x[5] == float(comm.rank() % 2 == 0 ? 0 + 2 : 1 + 3), "dp all_reduce");
    expect(y[5] == 2.0f && z[5] == 4.0f, "cp and world all_reduce");
  });
}

TEST_CASE("ThreadComm stress: many mixed operations in flight") {
  on_ranks(4, [](ThreadComm& comm, Expect& expect) {
    const int P = comm.size(), r = comm.rank();
    for (int round = 0; round < 100; ++round) {
      std::vector<float> a = sfm::test::values<float>(r, 37 + round), send(5, float(r)), recv(5);
      std::vector<float> shards(8), full(8 * P);
      auto h1 = comm.all_reduce_async(std::span(a));
      auto h2 = comm.send_recv_async(std::span(send), (r + 1) % P, std::span(recv), (r + P - 1) % P);
      auto h3 = comm.all_gather_async(std::span<const float>(shards), std::span(full));
      h3.wait();
      h2.wait();
      h1.wait();
      expect(
          a[11] == sfm::test::reduced<float>(sfm::ReduceOp::sum, P, 11) && recv[0] == float((r + P - 1) % P),
          "round ", round);
    }
  });
}

TEST_CASE("ThreadGroup rejects an empty group") {
  CHECK_THROWS_WITH(sfm::ThreadGroup(0), sfm::test::contains("ThreadGroup"));
}
