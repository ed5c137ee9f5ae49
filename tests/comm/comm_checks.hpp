// Checks of the Communicator contract, written once for every host-memory communicator (Serial,
// Thread, MPI). Each runs inside one rank and records failures in an Expect instead of using Catch2
// macros (not thread-safe in Catch2 2.x; and a REQUIRE that leaves a rank early would hang its peers);
// the caller reports them. Inputs are small integers given by rank-dependent formulas, so every
// reference sum is exact whatever order a communicator reduces in.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "sfm/comm/communicator.hpp"
#include "sfm/core/bf16.hpp"
#include "sfm_test.hpp"  // kHangLimit only: the checks themselves use no Catch2 macro

namespace sfm::test {

struct Expect {
  std::vector<std::string> failures;

  template <class... Parts>
  bool operator()(bool ok, const Parts&... parts) {
    if (!ok) {
      std::ostringstream text;
      (text << ... << parts);
      failures.push_back(text.str());
    }
    return ok;
  }

  // `action` must raise sfm::Error whose message contains every one of `words`.
  template <class Action>
  void error(Action&& action, std::initializer_list<std::string> words, const std::string& what) {
    try {
      action();
      (*this)(false, what, ": no sfm::Error was raised");
    } catch (const sfm::Error& e) {
      for (const std::string& word : words)
        (*this)(std::string(e.what()).find(word) != std::string::npos, what, ": message \"", e.what(),
                "\" lacks \"", word, "\"");
    } catch (const std::exception& e) {
      (*this)(false, what, ": raised a non-sfm::Error: ", e.what());
    }
  }
};

// x as an element of type T (bf16 has no conversion from integers; small ones are exact in it).
template <class T>
T element(long x) {
  if constexpr (std::same_as<T, bf16>)
    return to_bf16(float(x));
  else
    return T(x);
}

// Equality of elements; bf16 (which has no operator==) compares its bits.
template <class T>
bool same_element(T a, T b) {
  if constexpr (std::same_as<T, bf16>)
    return a.bits == b.bits;
  else
    return a == b;
}

template <class T>
bool same_elements(const std::vector<T>& a, const std::vector<T>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), same_element<T>);
}

// Whether C offers a reduction of bf16 elements: it must not (gradients reduce in fp32).
template <class C>
concept ReducesBf16 = requires(C& c, std::span<bf16> h, std::span<const bf16> ch) {
  c.all_reduce(h);
} || requires(C& c, std::span<bf16> h, std::span<const bf16> ch) { c.reduce_scatter(ch, h); };

// Rank r's element i: a small integer in [-8, 8], exact in every element type.
template <class T>
T value(int rank, std::size_t i) {
  return element<T>(long((rank + 1) * 7 + i * 3) % 17 - 8);
}

template <class T>
T reduced(ReduceOp op, int size, std::size_t i) {
  T acc = value<T>(0, i);
  for (int r = 1; r < size; ++r)
    acc = op == ReduceOp::sum ? T(acc + value<T>(r, i)) : std::max(acc, value<T>(r, i));
  return acc;
}

template <class T>
std::vector<T> values(int rank, std::size_t n, std::size_t offset = 0) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = value<T>(rank, offset + i);
  return v;
}

// First index where got differs from want(i), or -1.
template <class T, class Want>
long first_mismatch(std::span<const T> got, Want want) {
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!same_element(got[i], want(i))) return long(i);
  return -1;
}

template <class T, class C>
void check_all_reduce(C& comm, Expect& expect, std::size_t n, ReduceOp op, bool in_place) {
  const int P = comm.size();
  std::vector<T> in = values<T>(comm.rank(), n), out(n, T(-99));
  if (in_place)
    comm.all_reduce(std::span(in), op);
  else
    comm.all_reduce(std::span<const T>(in), std::span(out), op);
  const std::vector<T>& got = in_place ? in : out;
  const long bad = first_mismatch<T>(got, [&](std::size_t i) { return reduced<T>(op, P, i); });
  expect(bad < 0, "all_reduce n=", n, in_place ? " in place" : "", op == ReduceOp::max ? " max" : " sum",
         ": element ", bad, " is ", bad < 0 ? 0.0 : double(got[bad]));
  if (!in_place) expect(in == values<T>(comm.rank(), n), "all_reduce n=", n, ": the input changed");
}

template <class T, class C>
void check_reduce_scatter(C& comm, Expect& expect, std::size_t m, bool in_place) {
  const int P = comm.size(), r = comm.rank();
  std::vector<T> in = values<T>(r, P * m), separate(m, T(-99));
  std::span<T> out = in_place ? std::span(in).subspan(r * m, m) : std::span(separate);
  comm.reduce_scatter(std::span<const T>(in), out);
  const long bad =
      first_mismatch<T>(out, [&](std::size_t i) { return reduced<T>(ReduceOp::sum, P, r * m + i); });
  expect(bad < 0, "reduce_scatter m=", m, in_place ? " in place" : "", ": element ", bad);
}

template <class T, class C>
void check_all_gather(C& comm, Expect& expect, std::size_t m, bool in_place) {
  const int P = comm.size(), r = comm.rank();
  std::vector<T> out(P * m, element<T>(-99)), separate = values<T>(r, m, r * m);
  if (in_place) std::copy(separate.begin(), separate.end(), out.begin() + r * m);
  std::span<const T> in = in_place ? std::span<const T>(out).subspan(r * m, m) : std::span<const T>(separate);
  comm.all_gather(in, std::span(out));
  const long bad = first_mismatch<T>(out, [&](std::size_t i) { return value<T>(int(i / m), i); });
  expect(bad < 0, "all_gather m=", m, in_place ? " in place" : "", ": element ", bad);
}

template <class T, class C>
void check_broadcast(C& comm, Expect& expect, std::size_t n) {
  for (int root = 0; root < comm.size(); ++root) {
    std::vector<T> data = values<T>(comm.rank(), n);
    comm.broadcast(std::span(data), root);
    expect(same_elements(data, values<T>(root, n)), "broadcast n=", n, " from root ", root);
  }
}

// The ring step of ring attention: every rank sends to rank+step and receives from rank-step.
template <class T, class C>
void check_ring(C& comm, Expect& expect, std::size_t n, int step, bool async) {
  const int P = comm.size(), r = comm.rank();
  const int dest = ((r + step) % P + P) % P, source = ((r - step) % P + P) % P;
  const std::vector<T> send = values<T>(r, n);
  std::vector<T> recv(n, element<T>(-99));
  if (async) {
    auto handle = comm.send_recv_async(std::span(send), dest, std::span(recv), source);
    handle.wait();
  } else {
    comm.send_recv(std::span(send), dest, std::span(recv), source);
  }
  expect(same_elements(recv, values<T>(source, n)), "send_recv n=", n, " step ", step, async ? " async" : "");
}

template <class C>
void check_collectives(C& comm, Expect& expect) {
  for (bool in_place : {false, true}) {
    for (std::size_t n : {0, 1, 7, 1003}) {
      check_all_reduce<float>(comm, expect, n, ReduceOp::sum, in_place);
      check_all_reduce<double>(comm, expect, n, ReduceOp::max, in_place);
      check_all_reduce<std::int64_t>(comm, expect, n, ReduceOp::sum, in_place);
      check_all_reduce<std::int32_t>(comm, expect, n, ReduceOp::max, in_place);
    }
    for (std::size_t m : {1, 5, 257}) {
      check_reduce_scatter<float>(comm, expect, m, in_place);
      check_reduce_scatter<double>(comm, expect, m, in_place);
      check_reduce_scatter<std::int64_t>(comm, expect, m, in_place);
      check_all_gather<float>(comm, expect, m, in_place);
      check_all_gather<double>(comm, expect, m, in_place);
      check_all_gather<std::int64_t>(comm, expect, m, in_place);
      check_all_gather<bf16>(comm, expect, m, in_place);
    }
  }
  for (std::size_t n : {1, 13, 1001}) {
    check_broadcast<float>(comm, expect, n);
    check_broadcast<std::int64_t>(comm, expect, n);
    check_broadcast<bf16>(comm, expect, n);
  }
  for (std::size_t n : {0, 11, 1001})
    for (int step : {1, -1, 2})
      for (bool async : {false, true}) check_ring<float>(comm, expect, n, step, async);
  check_ring<double>(comm, expect, 5, 1, false);
  check_ring<bf16>(comm, expect, 1001, 1, true);
  comm.barrier();
}

// Several async operations in flight at once, waited in another order, with computation between.
template <class C>
void check_async(C& comm, Expect& expect) {
  const int P = comm.size(), r = comm.rank();
  const std::size_t n = 1 << 15, m = 301;
  std::vector<float> a = values<float>(r, n);
  std::vector<double> rs_in = values<double>(r, P * m), rs_out(m);
  std::vector<std::int64_t> ag_in = values<std::int64_t>(r, m, r * m), ag_out(P * m);
  std::vector<float> ring_out(m);
  const std::vector<float> ring_in = values<float>(r, m);
  auto h1 = comm.all_reduce_async(std::span(a));
  auto h2 = comm.reduce_scatter_async(std::span<const double>(rs_in), std::span(rs_out));
  auto h3 = comm.all_gather_async(std::span<const std::int64_t>(ag_in), std::span(ag_out));
  auto h4 = comm.send_recv_async(std::span(ring_in), (r + 1) % P, std::span(ring_out), (r + P - 1) % P);
  // Compute until the first operation is done, polling test(): it must finish without wait(). On a
  // busy machine the peers may take long to post theirs; only kHangLimit without it is a failure.
  double sink = 0;
  const auto deadline = std::chrono::steady_clock::now() + kHangLimit;
  bool done = false;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 20000; ++i) sink += std::sin(double(i));
    done = h1.test();
  }
  expect(done && sink != 1.0, "all_reduce_async did not complete while the caller computed");
  h4.wait();
  h3.wait();
  h2.wait();
  h1.wait();
  h1.wait();  // a second wait returns at once
  expect(first_mismatch<float>(a, [&](std::size_t i) { return reduced<float>(ReduceOp::sum, P, i); }) < 0,
         "all_reduce_async result");
  expect(first_mismatch<double>(
             rs_out, [&](std::size_t i) { return reduced<double>(ReduceOp::sum, P, r * m + i); }) < 0,
         "reduce_scatter_async result");
  expect(first_mismatch<std::int64_t>(ag_out,
                                      [&](std::size_t i) { return value<std::int64_t>(int(i / m), i); }) < 0,
         "all_gather_async result");
  expect(ring_out == values<float>((r + P - 1) % P, m), "send_recv_async result");
  // A handle moved, and one dropped unwaited (its destructor waits).
  std::vector<float> b = values<float>(r, 9);
  {
    auto dropped = comm.all_reduce_async(std::span(b));
    [[maybe_unused]] auto moved = std::move(dropped);
  }
  expect(b[3] == reduced<float>(ReduceOp::sum, P, 3), "dropped handle: the operation still completed");
}

// Rows: color rank/2, key rank (pairs of consecutive ranks). Columns: color rank%2, key −rank
// (reverse order). With 4 ranks, a 2 × 2 mesh.
template <class C>
void check_split(C& comm, Expect& expect) {
  const int P = comm.size(), r = comm.rank();
  auto members_of = [&](auto same, bool reverse) {
    std::vector<std::int64_t> members;
    for (int q = 0; q < P; ++q)
      if (same(q)) members.push_back(q);
    if (reverse) std::reverse(members.begin(), members.end());
    return members;
  };
  const auto rows = members_of([&](int q) { return q / 2 == r / 2; }, false);
  const auto cols = members_of([&](int q) { return q % 2 == r % 2; }, true);
  C row = comm.split(r / 2, r);
  C col = comm.split(r % 2, -r);
  for (auto [sub, members, what] : {std::tuple{&row, &rows, "row"}, std::tuple{&col, &cols, "column"}}) {
    const auto index = std::find(members->begin(), members->end(), r) - members->begin();
    expect(sub->size() == int(members->size()) && sub->rank() == int(index), what, " split: rank ",
           sub->rank(), " of ", sub->size(), ", expected ", index, " of ", members->size());
    std::vector<std::int64_t> gathered(members->size());
    const std::int64_t me = r;
    sub->all_gather(std::span(&me, 1), std::span(gathered));
    expect(gathered == *members, what, " split: all_gather of world ranks");
    std::int64_t sum = r;
    sub->all_reduce(std::span(&sum, 1));
    expect(sum == std::accumulate(members->begin(), members->end(), std::int64_t(0)), what,
           " split: all_reduce");
    check_ring<float>(*sub, expect, 17, 1, true);
  }
  check_all_reduce<float>(comm, expect, 33, ReduceOp::sum, false);  // the parent still works
}

template <class C>
void check_stats(C& comm, Expect& expect) {
  const int P = comm.size(), r = comm.rank();
  comm.reset_stats();
  expect(comm.stats().bytes_sent == 0 && comm.stats().calls == 0, "reset_stats");
  std::vector<float> f(10, 1.0f), chunk(3);
  std::vector<float> full(3 * P, 1.0f);
  comm.all_reduce(std::span(f));
  expect(comm.stats().bytes_sent == std::uint64_t(2 * (P - 1) * 40 / P) && comm.stats().calls == 1,
         "stats after all_reduce of 40 bytes: ", comm.stats().bytes_sent);
  comm.reset_stats();
  comm.reduce_scatter(std::span<const float>(full), std::span(chunk));
  comm.all_gather(std::span<const float>(chunk), std::span(full));
  expect(comm.stats().bytes_sent == std::uint64_t(2 * (P - 1) * 12) && comm.stats().calls == 2,
         "stats after reduce_scatter + all_gather: ", comm.stats().bytes_sent);
  comm.reset_stats();
  comm.broadcast(std::span(f), 0);
  expect(comm.stats().bytes_sent == (r == 0 ? 40u : 0u), "stats after broadcast: ", comm.stats().bytes_sent);
  comm.reset_stats();
  comm.send_recv(std::span(chunk), (r + 1) % P, std::span(full).first(3), (r + P - 1) % P);
  comm.barrier();
  expect(comm.stats().bytes_sent == (P > 1 ? 12u : 0u) && comm.stats().calls == 1,
         "stats after send_recv: ", comm.stats().bytes_sent);
}

// Bad arguments raise sfm::Error naming the operation, before anything is sent, so the
// communicator stays usable.
template <class C>
void check_errors(C& comm, Expect& expect) {
  const int P = comm.size(), r = comm.rank();
  std::vector<float> a(5), b(6), big(4 * P + 1), buf(8);
  expect.error([&] { comm.all_reduce(std::span<const float>(a), std::span(b)); }, {"all_reduce", "5", "6"},
               "all_reduce size mismatch");
  expect.error([&] { comm.all_reduce(std::span<const float>(buf).first(5), std::span(buf).subspan(2, 5)); },
               {"all_reduce", "overlap"}, "all_reduce partial overlap");
  expect.error([&] { comm.reduce_scatter(std::span<const float>(big), std::span(a).first(4)); },
               {"reduce_scatter", std::to_string(4 * P + 1)}, "reduce_scatter size");
  expect.error([&] { comm.all_gather(std::span<const float>(a).first(4), std::span(big)); },
               {"all_gather", std::to_string(4 * P + 1)}, "all_gather size");
  if (P > 1) {
    std::vector<float> in(2 * P);
    expect.error(
        [&] { comm.reduce_scatter(std::span<const float>(in), std::span(in).subspan(2 * ((r + 1) % P), 2)); },
        {"reduce_scatter", "chunk"}, "reduce_scatter into the wrong chunk");
  }
  expect.error([&] { comm.broadcast(std::span(a), P); }, {"broadcast", "root", std::to_string(P)},
               "broadcast root");
  expect.error([&] { comm.send_recv(std::span<const float>(a), -1, std::span(b), 0); },
               {"send_recv", "dest", "-1"}, "send_recv dest");
  expect.error([&] { comm.send_recv(std::span<const float>(a), 0, std::span(b), P + 2); },
               {"send_recv", "source"}, "send_recv source");
  expect.error([&] { (void)comm.split(-1, 0); }, {"split", "color"}, "split color");
  check_all_reduce<float>(comm, expect, 9, ReduceOp::sum, true);  // still consistent
}

template <class C>
void check_everything(C& comm, Expect& expect) {
  check_collectives(comm, expect);
  check_async(comm, expect);
  check_split(comm, expect);
  check_stats(comm, expect);
  check_errors(comm, expect);
}

}  // namespace sfm::test
