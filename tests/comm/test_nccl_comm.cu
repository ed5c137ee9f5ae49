// NcclComm under mpiexec (one rank per GPU; the test machine has one): every collective, in place
// and out of place, async handles (wait, wait_on, test), split, stats and argument errors, checked
// against host references. Without a CUDA device it prints "SKIPPED: no CUDA device" and exits 77.
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <memory>
#include <vector>

#include "comm/comm_checks.hpp"
#include "sfm/comm/mpi.hpp"
#include "sfm/comm/nccl.hpp"
#include "sfm_test.hpp"

#ifndef SFM_HAS_NCCL_COMM
#error "sfm/comm/nccl.hpp did not enable NcclComm under nvcc"
#endif

using sfm::NcclComm;
using sfm::ReduceOp;
using sfm::test::reduced;
using sfm::test::value;
using sfm::test::values;

static_assert(sfm::Communicator<NcclComm>);

namespace {

void cuda_check(cudaError_t result) {
  if (result != cudaSuccess) sfm::fail("CUDA: ", cudaGetErrorString(result));
}

// A device array of n elements.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(std::size_t n) : n_(n) {
    cuda_check(cudaMalloc(&data_, std::max<std::size_t>(n, 1) * sizeof(T)));
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { upload(host); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(data_); }

  void upload(const std::vector<T>& host) {
    cuda_check(cudaMemcpy(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    cuda_check(cudaMemcpy(host.data(), data_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  std::span<T> span() { return {data_, n_}; }

 private:
  T* data_ = nullptr;
  std::size_t n_;
};

// The world NcclComm on a stream of its own; one GPU per rank, picked by node-local rank.
struct World {
  World() {
    sfm::MpiComm mpi = sfm::MpiComm::world();
    int devices = 0;
    cuda_check(cudaGetDeviceCount(&devices));
    cuda_check(cudaSetDevice(mpi.local_rank() % devices));
    cuda_check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    comm = std::make_unique<NcclComm>(mpi, stream);
  }
  ~World() {
    comm.reset();
    cudaStreamDestroy(stream);
  }
  cudaStream_t stream = nullptr;
  std::unique_ptr<NcclComm> comm;
};

template <class T>
void check_collectives(NcclComm& comm) {
  const int P = comm.size(), r = comm.rank();
  const std::size_t n = 1003, m = 257;
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::max}) {
    DeviceArray<T> in(values<T>(r, n)), out(n);
    comm.all_reduce(sfm::const_span<T>(in.span()), out.span(), op);
    comm.all_reduce(in.span(), op);
    const std::vector<T> a = out.download(), b = in.download();
    for (std::size_t i = 0; i < n; ++i) {
      REQUIRE(a[i] == reduced<T>(op, P, i));
      REQUIRE(b[i] == reduced<T>(op, P, i));
    }
  }
  {  // reduce_scatter, out of place then in place (out = chunk r of in)
    DeviceArray<T> in(values<T>(r, P * m)), out(m);
    comm.reduce_scatter(sfm::const_span<T>(in.span()), out.span());
    comm.reduce_scatter(sfm::const_span<T>(in.span()), in.span().subspan(r * m, m));
    const std::vector<T> a = out.download(), b = in.download();
    for (std::size_t i = 0; i < m; ++i) {
      REQUIRE(a[i] == reduced<T>(ReduceOp::sum, P, r * m + i));
      REQUIRE(b[r * m + i] == a[i]);
    }
  }
  {  // all_gather, out of place then in place (in = chunk r of out)
    DeviceArray<T> in(values<T>(r, m, r * m)), out(P * m), inplace(P * m);
    std::vector<T> seeded(P * m, T(0));
    for (std::size_t i = 0; i < m; ++i) seeded[r * m + i] = value<T>(r, r * m + i);
    inplace.upload(seeded);
    comm.all_gather(sfm::const_span<T>(in.span()), out.span());
    comm.all_gather(sfm::const_span<T>(inplace.span().subspan(r * m, m)), inplace.span());
    const std::vector<T> a = out.download(), b = inplace.download();
    for (std::size_t i = 0; i < P * m; ++i) {
      REQUIRE(a[i] == value<T>(int(i / m), i));
      REQUIRE(b[i] == a[i]);
    }
  }
  for (int root = 0; root < P; ++root) {
    DeviceArray<T> data(values<T>(r, n));
    comm.broadcast(data.span(), root);
    REQUIRE(data.download() == values<T>(root, n));
  }
  {  // the ring step
    DeviceArray<T> send(values<T>(r, n)), recv(n);
    comm.send_recv(sfm::const_span<T>(send.span()), (r + 1) % P, recv.span(), (r + P - 1) % P);
    REQUIRE(recv.download() == values<T>((r + P - 1) % P, n));
  }
}

// bf16 moves as ncclBfloat16 (all_gather, broadcast, send_recv; it never reduces, ReducesBf16).
void check_bf16_moves(NcclComm& comm) {
  using sfm::bf16, sfm::test::same_elements;
  const int P = comm.size(), r = comm.rank();
  const std::size_t n = 1003, m = 257;
  DeviceArray<bf16> in(values<bf16>(r, m, r * m)), out(P * m);
  comm.all_gather(sfm::const_span<bf16>(in.span()), out.span());
  std::vector<bf16> want(P * m);
  for (std::size_t i = 0; i < P * m; ++i) want[i] = value<bf16>(int(i / m), i);
  REQUIRE(same_elements(out.download(), want));
  for (int root = 0; root < P; ++root) {
    DeviceArray<bf16> data(values<bf16>(r, n));
    comm.broadcast(data.span(), root);
    REQUIRE(same_elements(data.download(), values<bf16>(root, n)));
  }
  DeviceArray<bf16> send(values<bf16>(r, n)), recv(n);
  comm.send_recv(sfm::const_span<bf16>(send.span()), (r + 1) % P, recv.span(), (r + P - 1) % P);
  REQUIRE(same_elements(recv.download(), values<bf16>((r + P - 1) % P, n)));
}

static_assert(!sfm::test::ReducesBf16<NcclComm>);

}  // namespace

TEST_CASE("NcclComm collectives against host references") {
  World world;
  check_collectives<float>(*world.comm);
  check_collectives<double>(*world.comm);
  check_collectives<std::int64_t>(*world.comm);
  check_bf16_moves(*world.comm);
  world.comm->barrier();
}

TEST_CASE("NcclComm async handles: wait, wait_on a compute stream, test") {
  World world;
  NcclComm& comm = *world.comm;
  const int P = comm.size(), r = comm.rank();
  const std::size_t n = 1 << 20;
  DeviceArray<float> a(values<float>(r, n)), b(values<float>(r, n)), copy(n);
  auto h1 = comm.all_reduce_async(a.span());
  auto h2 = comm.all_reduce_async(b.span());
  cudaStream_t compute = nullptr;
  cuda_check(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking));
  h2.wait_on(compute);  // the copy on the compute stream runs after the all-reduce
  cuda_check(cudaMemcpyAsync(copy.span().data(), b.span().data(), n * sizeof(float), cudaMemcpyDeviceToDevice,
                             compute));
  cuda_check(cudaStreamSynchronize(compute));
  cudaStreamDestroy(compute);
  h1.wait();
  CHECK(h1.test());
  const std::vector<float> ha = a.download(), hc = copy.download();
  for (std::size_t i = 0; i < n; i += 997) {
    REQUIRE(ha[i] == reduced<float>(ReduceOp::sum, P, i));
    REQUIRE(hc[i] == ha[i]);
  }
  DeviceArray<double> in(values<double>(r, P * 5)), out(5), full(P * 5);
  auto h3 = comm.reduce_scatter_async(sfm::const_span<double>(in.span()), out.span());
  h3.wait();
  auto h4 = comm.all_gather_async(sfm::const_span<double>(out.span()), full.span());
  while (!h4.test()) {
  }
  const std::vector<double> gathered = full.download();
  for (std::size_t i = 0; i < P * 5; ++i) REQUIRE(gathered[i] == reduced<double>(ReduceOp::sum, P, i));
  DeviceArray<float> send(values<float>(r, 9)), recv(9);
  auto h5 =
      comm.send_recv_async(sfm::const_span<float>(send.span()), (r + 1) % P, recv.span(), (r + P - 1) % P);
  h5.wait();
  CHECK(recv.download() == values<float>((r + P - 1) % P, 9));
}

TEST_CASE("NcclComm split, stats and argument errors") {
  World world;
  NcclComm& comm = *world.comm;
  const int P = comm.size(), r = comm.rank();
  NcclComm half = comm.split(r % 2, r);
  CHECK(half.size() == (P + 1 - r % 2) / 2);
  CHECK(half.rank() == r / 2);
  DeviceArray<std::int64_t> x(std::vector<std::int64_t>{r});
  half.all_reduce(x.span());
  std::int64_t expected = 0;
  for (int q = r % 2; q < P; q += 2) expected += q;
  CHECK(x.download()[0] == expected);

  comm.reset_stats();
  DeviceArray<float> f(10);
  comm.all_reduce(f.span());
  CHECK(comm.stats().bytes_sent == std::uint64_t(2 * (P - 1) * 40 / P));
  CHECK(comm.stats().calls == 1);

  DeviceArray<float> five(5), six(6);
  CHECK_THROWS_WITH(comm.all_reduce(sfm::const_span<float>(five.span()), six.span()),
                    sfm::test::contains("all_reduce"));
  CHECK_THROWS_WITH(comm.broadcast(five.span(), P), sfm::test::contains("root"));
  comm.barrier();
}
