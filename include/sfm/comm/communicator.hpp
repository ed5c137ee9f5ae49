// The Communicator concept and what every communicator shares: ReduceOp, the element types,
// CommStats with its traffic model, and the argument checks that turn bad use into sfm::Error.
//
// Element types: float, double, int32, int64 and bf16 move (all_gather, broadcast, send_recv);
// only the first four reduce (all_reduce, reduce_scatter). bf16 is there for the mixed-precision
// parameter gathers: gradients reduce in fp32, so a bf16 reduction is a compile error, not a
// silently lossy sum.
//
// A communicator is a group of `size()` ranks; this object is rank `rank()`. Collectives take spans
// of the communicator's memory (host for Serial/Thread/MPI, device for NCCL) and must be called by
// every rank in the same order with matching sizes; send_recv pairs with the peers' send_recv.
//   all_reduce(inout, op) / all_reduce(in, out, op)   every rank gets the element-wise reduction
//   reduce_scatter(in, out)    in = size()·m elements; rank r gets the sum of chunk r (out: m)
//                              in place when out is chunk rank() of in
//   all_gather(in, out)        out = size()·m elements, chunk r from rank r; in place when in is
//                              chunk rank() of out
//   broadcast(data, root)      every rank gets root's data
//   send_recv(send, dest, recv, source)  both posted before either waits (a ring step cannot
//                              deadlock)
//   split(color, key)          the ranks with the same color (>= 0), ordered by (key, rank)
//   barrier()
// The `_async` forms of all_reduce, reduce_scatter, all_gather and send_recv return a move-only
// Handle (wait(), test(); a second wait() returns at once); the spans must stay alive and untouched
// until it completes. A Handle destroyed unwaited waits in its destructor.
//
// Traffic model (CommStats::bytes_sent, per rank, what the standard ring algorithms send; P = size(),
// B = bytes of the full buffer): all_reduce 2·(P−1)·B/P, reduce_scatter and all_gather (P−1)·B/P
// (B = the size()·m buffer), broadcast B at the root and 0 elsewhere, send_recv the send bytes when
// dest ≠ rank(). Integer division rounds down. `calls` counts the data-moving operations (sync and
// async alike; not barrier or split).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <type_traits>

#include "sfm/core/bf16.hpp"
#include "sfm/core/error.hpp"

namespace sfm {

enum class ReduceOp { sum, max };

// A read-only span argument: takes std::span<T> or std::span<const T>, T deduced from the other
// (writable) argument.
template <class T>
using const_span = std::span<const std::type_identity_t<T>>;

// The element types every communicator reduces, and those it moves (the reducible ones and bf16).
template <class T>
concept ReducibleElement = std::same_as<T, float> || std::same_as<T, double> || std::same_as<T, std::int32_t> ||
    std::same_as<T, std::int64_t>;
template <class T>
concept CommElement = ReducibleElement<T> || std::same_as<T, bf16>;

enum class ElementKind { f32, f64, i32, i64, bf16 };

template <CommElement T>
constexpr ElementKind element_kind() {
  if constexpr (std::same_as<T, float>)
    return ElementKind::f32;
  else if constexpr (std::same_as<T, double>)
    return ElementKind::f64;
  else if constexpr (std::same_as<T, std::int32_t>)
    return ElementKind::i32;
  else if constexpr (std::same_as<T, std::int64_t>)
    return ElementKind::i64;
  else
    return ElementKind::bf16;
}

constexpr const char* element_name(ElementKind kind) {
  switch (kind) {
    case ElementKind::f32:
      return "float";
    case ElementKind::f64:
      return "double";
    case ElementKind::i32:
      return "int32";
    case ElementKind::i64:
      return "int64";
    case ElementKind::bf16:
      return "bf16";
  }
  return "?";
}

// Traffic counters of one rank (see the model above).
struct CommStats {
  std::uint64_t bytes_sent = 0;
  std::uint64_t calls = 0;
};

// A completion handle of an asynchronous operation; a default-constructed one is complete.
template <class H>
concept CommHandle =
    std::movable<H> && !std::copyable<H> && std::default_initializable<H> && requires(H & handle) {
  handle.wait();
  { handle.test() } -> std::same_as<bool>;
};

template <class C>
concept Communicator = std::movable<C> && CommHandle<typename C::Handle> &&
    requires(C& c, const C& cc, std::span<float> f, std::span<const float> cf, std::span<std::int64_t> i,
             std::span<const std::int64_t> ci, std::span<bf16> h, std::span<const bf16> ch, int k) {
  { cc.rank() } -> std::same_as<int>;
  { cc.size() } -> std::same_as<int>;
  c.all_reduce(f, ReduceOp::sum);
  c.all_reduce(cf, f, ReduceOp::max);
  c.all_reduce(i);
  c.reduce_scatter(cf, f);
  c.all_gather(cf, f);
  c.all_gather(ci, i);
  c.all_gather(ch, h);
  c.broadcast(f, k);
  c.send_recv(cf, k, f, k);
  c.send_recv(ch, k, h, k);
  c.barrier();
  { c.split(k, k) } -> std::same_as<C>;
  { c.all_reduce_async(f, ReduceOp::sum) } -> std::same_as<typename C::Handle>;
  { c.all_reduce_async(cf, f, ReduceOp::sum) } -> std::same_as<typename C::Handle>;
  { c.reduce_scatter_async(cf, f) } -> std::same_as<typename C::Handle>;
  { c.all_gather_async(cf, f) } -> std::same_as<typename C::Handle>;
  { c.all_gather_async(ch, h) } -> std::same_as<typename C::Handle>;
  { c.send_recv_async(cf, k, f, k) } -> std::same_as<typename C::Handle>;
  { cc.stats() } -> std::same_as<const CommStats&>;
  c.reset_stats();
};

namespace comm_detail {

inline bool overlap(const void* a, std::size_t a_bytes, const void* b, std::size_t b_bytes) {
  if (a_bytes == 0 || b_bytes == 0) return false;
  const auto* pa = static_cast<const std::byte*>(a);
  const auto* pb = static_cast<const std::byte*>(b);
  std::less<const std::byte*> less;
  return less(pa, pb + b_bytes) && less(pb, pa + a_bytes);
}

// The argument checks, shared by every communicator; `who` names the communicator type.
template <class T>
void check_all_reduce(const char* who, std::span<const T> in, std::span<T> out) {
  SFM_CHECK(in.size() == out.size(), who, " all_reduce: in has ", in.size(), " elements but out has ",
            out.size());
  SFM_CHECK(in.data() == out.data() || !overlap(in.data(), in.size_bytes(), out.data(), out.size_bytes()),
            who, " all_reduce: in and out overlap without being the same buffer");
}

// in: size·m elements; out: m, either apart from in or exactly chunk `rank` of it.
template <class T>
void check_reduce_scatter(const char* who, std::span<const T> in, std::span<T> out, int rank, int size) {
  SFM_CHECK(in.size() % size == 0, who, " reduce_scatter: in has ", in.size(),
            " elements, not a multiple of the communicator size ", size);
  SFM_CHECK(in.size() == out.size() * size, who, " reduce_scatter: in has ", in.size(),
            " elements but size() × out.size() = ", size, " × ", out.size(), " = ", out.size() * size);
  SFM_CHECK(out.data() == in.data() + rank * out.size() ||
                !overlap(in.data(), in.size_bytes(), out.data(), out.size_bytes()),
            who, " reduce_scatter: out overlaps in but is not chunk rank() = ", rank, " of it");
}

// out: size·m elements; in: m, either apart from out or exactly chunk `rank` of it.
template <class T>
void check_all_gather(const char* who, std::span<const T> in, std::span<T> out, int rank, int size) {
  SFM_CHECK(out.size() % size == 0, who, " all_gather: out has ", out.size(),
            " elements, not a multiple of the communicator size ", size);
  SFM_CHECK(out.size() == in.size() * size, who, " all_gather: out has ", out.size(),
            " elements but size() × in.size() = ", size, " × ", in.size(), " = ", in.size() * size);
  SFM_CHECK(in.data() == out.data() + rank * in.size() ||
                !overlap(in.data(), in.size_bytes(), out.data(), out.size_bytes()),
            who, " all_gather: in overlaps out but is not chunk rank() = ", rank, " of it");
}

inline void check_rank(const char* who, const char* op, const char* role, int value, int size) {
  SFM_CHECK(value >= 0 && value < size, who, " ", op, ": ", role, " ", value,
            " is out of range for a communicator of size ", size);
}

template <class T>
void check_send_recv(const char* who, std::span<const T> send, int dest, std::span<T> recv, int source,
                     int size) {
  check_rank(who, "send_recv", "dest", dest, size);
  check_rank(who, "send_recv", "source", source, size);
  SFM_CHECK(!overlap(send.data(), send.size_bytes(), recv.data(), recv.size_bytes()), who,
            " send_recv: the send and receive buffers overlap");
}

inline void check_split(const char* who, int color) {
  SFM_CHECK(color >= 0, who, " split: color ", color, " is negative");
}

}  // namespace comm_detail

// The forms every asynchronous-at-heart communicator (Thread, MPI, NCCL) derives from its *_async
// members: the blocking collectives wait for the async ones, and the in-place all_reduce_async is
// the out-of-place one on the same span. CRTP: Derived provides the *_async members and a Handle
// (and brings all_reduce_async in with a using-declaration, since its own overload hides this one).
template <class Derived>
class AsyncCollectives {
 public:
  template <ReducibleElement T>
  void all_reduce(std::span<T> inout, ReduceOp op = ReduceOp::sum) {
    self().all_reduce_async(inout, op).wait();
  }
  template <ReducibleElement T>
  void all_reduce(const_span<T> in, std::span<T> out, ReduceOp op = ReduceOp::sum) {
    self().all_reduce_async(in, out, op).wait();
  }
  template <ReducibleElement T>
  void reduce_scatter(const_span<T> in, std::span<T> out) {
    self().reduce_scatter_async(in, out).wait();
  }
  template <CommElement T>
  void all_gather(const_span<T> in, std::span<T> out) {
    self().all_gather_async(in, out).wait();
  }
  template <CommElement T>
  void send_recv(const_span<T> send, int dest, std::span<T> recv, int source) {
    self().send_recv_async(send, dest, recv, source).wait();
  }
  template <ReducibleElement T>
  auto all_reduce_async(std::span<T> inout, ReduceOp op = ReduceOp::sum) {
    return self().all_reduce_async(const_span<T>(inout), inout, op);
  }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
};

// The traffic model (see the top of this file); `bytes` is the full buffer of the operation.
namespace comm_traffic {

inline std::uint64_t all_reduce(std::size_t bytes, int size) {
  return 2 * std::uint64_t(size - 1) * bytes / std::uint64_t(size);
}
inline std::uint64_t reduce_scatter(std::size_t full_bytes, int size) {
  return std::uint64_t(size - 1) * full_bytes / std::uint64_t(size);
}
inline std::uint64_t all_gather(std::size_t full_bytes, int size) { return reduce_scatter(full_bytes, size); }
inline std::uint64_t broadcast(std::size_t bytes, bool is_root) { return is_root ? bytes : 0; }
inline std::uint64_t send_recv(std::size_t send_bytes, bool to_self) { return to_self ? 0 : send_bytes; }

inline void record(CommStats& stats, std::uint64_t bytes) {
  stats.bytes_sent += bytes;
  ++stats.calls;
}

}  // namespace comm_traffic

}  // namespace sfm
