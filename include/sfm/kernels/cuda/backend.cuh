// sfm::Cuda: the CUDA backend's tag type, its device memory (DeviceArray) and its per-thread context.
//
// Like sfm::Cpu (kernels/cpu/backend.hpp) the backend is an empty tag: every kernel is a free
// function overloaded on it and found by argument-dependent lookup, so the model is written once.
// Kernels take device pointers and run on cuda_context().stream, in issue order; nothing here
// synchronises the host except DeviceArray::to_host() and the scalar that mae_loss returns.
//
// Errors from the CUDA runtime and cuBLAS(Lt) raise sfm::Error with file:line, the failed
// expression and the library's error string (SFM_CUDA_CHECK, SFM_CUBLAS_CHECK).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

#include "sfm/core/bf16.hpp"
#include "sfm/core/error.hpp"
#include "sfm/kernels/backend.hpp"

namespace sfm::cuda_detail {

[[noreturn]] inline void cuda_failed(cudaError_t status, const char* expression, const char* file, int line) {
  fail(file, ":", line, ": ", expression, " failed: ", cudaGetErrorName(status), " (", cudaGetErrorString(status),
       ")");
}

[[noreturn]] inline void cublas_failed(cublasStatus_t status, const char* expression, const char* file, int line) {
  fail(file, ":", line, ": ", expression, " failed: ", cublasLtGetStatusName(status), " (",
       cublasLtGetStatusString(status), ")");
}

}  // namespace sfm::cuda_detail

// SFM_CUDA_CHECK(cudaMalloc(...)): raise sfm::Error unless the call returned cudaSuccess.
#define SFM_CUDA_CHECK(expression)                                                     \
  do {                                                                                 \
    const cudaError_t sfm_cuda_status_ = (expression);                                 \
    if (sfm_cuda_status_ != cudaSuccess)                                               \
      ::sfm::cuda_detail::cuda_failed(sfm_cuda_status_, #expression, __FILE__, __LINE__); \
  } while (0)

// SFM_CUBLAS_CHECK(cublasLtMatmul(...)): raise sfm::Error unless the call returned CUBLAS_STATUS_SUCCESS.
#define SFM_CUBLAS_CHECK(expression)                                                     \
  do {                                                                                   \
    const cublasStatus_t sfm_cublas_status_ = (expression);                              \
    if (sfm_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                     \
      ::sfm::cuda_detail::cublas_failed(sfm_cublas_status_, #expression, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: a bad launch configuration (too much shared memory, too many threads) is
// reported by cudaGetLastError; faults inside the kernel surface at the next synchronising call.
#define SFM_CUDA_CHECK_LAUNCH() SFM_CUDA_CHECK(cudaGetLastError())

namespace sfm {

// The device, streams and library handles of one host thread, created on first use (on the device
// current at that moment) and released when the thread ends. Errors in the destructor are ignored:
// at process exit the runtime may already be gone.
class CudaContext {
 public:
  CudaContext() {
    SFM_CUDA_CHECK(cudaGetDevice(&device));
    // Blocking streams (default flags): a stray cudaMemcpy on the legacy default stream still
    // orders with our kernels, so forgetting the stream is slow, never wrong.
    SFM_CUDA_CHECK(cudaStreamCreate(&stream));
    SFM_CUDA_CHECK(cudaStreamCreate(&comm_stream));
    SFM_CUDA_CHECK(cudaEventCreateWithFlags(&marker, cudaEventDisableTiming));
    SFM_CUBLAS_CHECK(cublasLtCreate(&lt));
    SFM_CUDA_CHECK(cudaMalloc(&workspace, workspace_bytes));
  }
  ~CudaContext() {
    if (scratch_) cudaFree(scratch_);
    if (workspace) cudaFree(workspace);
    if (lt) cublasLtDestroy(lt);
    if (marker) cudaEventDestroy(marker);
    if (comm_stream) cudaStreamDestroy(comm_stream);
    if (stream) cudaStreamDestroy(stream);
  }
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  // Device scratch of at least `bytes` for temporaries inside one kernel call (reduction partials,
  // attention's row statistics). Every user runs on `stream`, so stream order keeps successive
  // users apart. Growing frees the old buffer: cudaFree waits for the device, so no kernel still
  // reads it; it happens only the first few times a larger size is asked for.
  void* scratch(size_t bytes) {
    if (bytes > scratch_bytes_) {
      if (scratch_) SFM_CUDA_CHECK(cudaFree(scratch_));
      scratch_ = nullptr;
      scratch_bytes_ = 0;
      SFM_CUDA_CHECK(cudaMalloc(&scratch_, bytes));
      scratch_bytes_ = bytes;
    }
    return scratch_;
  }

  int device = 0;
  cudaStream_t stream = nullptr;       // every kernel of the backend
  cudaStream_t comm_stream = nullptr;  // collectives (NCCL), overlapped with compute
  // Recorded on `stream` to make another stream wait for the work queued so far (collective_order.cuh).
  // One event serves every such wait: cudaStreamWaitEvent waits for the record made before it.
  cudaEvent_t marker = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;  // cuBLASLt workspace (32 MiB, the size NVIDIA recommends for Hopper)
  size_t workspace_bytes = size_t{32} << 20;
  // fp32 GEMMs on TF32 tensor cores (inputs rounded to 10 mantissa bits, fp32 accumulation), as
  // PyTorch's allow_tf32. Off by default: the fp32 path is what is compared with the CPU backend.
  bool tf32_matmul = false;

 private:
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
};

// The calling thread's context.
inline CudaContext& cuda_context() {
  thread_local CudaContext context;
  return context;
}

namespace cuda_detail {

// Grid size for a grid-stride loop over n items with `threads` per block.
inline unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return unsigned(blocks < 1 ? 1 : (blocks > (int64_t{1} << 20) ? (int64_t{1} << 20) : blocks));
}

template <class T>
__global__ void fill_kernel(T* data, size_t n, T value) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    data[i] = value;
}

// Element conversions used by every kernel: loads widen to fp32, stores round to T (bf16: to
// nearest even, as sfm::to_bf16 on the host).
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(bf16 x) { return to_float(x); }
template <class T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ bf16 from_f32<bf16>(float x) {
  return to_bf16(x);
}

}  // namespace cuda_detail

// An owning device buffer with the part of std::vector's interface the model uses. Move-only.
// Contents live on the device; read them back with to_host().
template <class T>
class DeviceArray {
 public:
  using value_type = T;

  DeviceArray() = default;
  explicit DeviceArray(size_t n) { assign(n, T{}); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  DeviceArray& operator=(DeviceArray&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~DeviceArray() { release(); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // n copies of value (a device fill on the compute stream).
  void assign(size_t n, const T& value) {
    reallocate(n);
    if (n == 0) return;
    cuda_detail::fill_kernel<T><<<cuda_detail::grid_for(int64_t(n), 256), 256, 0, cuda_context().stream>>>(data_, n,
                                                                                                           value);
    SFM_CUDA_CHECK_LAUNCH();
  }

  // The host range [first, last), converted to T and copied to the device on the compute stream.
  // The copy is from pageable memory, which CUDA stages before cudaMemcpyAsync returns, so the
  // temporary host vector may go right after.
  template <std::input_iterator It>
  void assign(It first, It last) {
    std::vector<T> host;
    for (; first != last; ++first) host.push_back(static_cast<T>(*first));
    reallocate(host.size());
    if (host.empty()) return;
    SFM_CUDA_CHECK(cudaMemcpyAsync(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice,
                                   cuda_context().stream));
  }

  // A host copy (waits for the compute stream).
  std::vector<T> to_host() const {
    std::vector<T> host(size_);
    if (size_ == 0) return host;
    CudaContext& context = cuda_context();
    SFM_CUDA_CHECK(cudaMemcpyAsync(host.data(), data_, size_ * sizeof(T), cudaMemcpyDeviceToHost, context.stream));
    SFM_CUDA_CHECK(cudaStreamSynchronize(context.stream));
    return host;
  }

 private:
  void reallocate(size_t n) {
    if (n == size_) return;
    release();
    if (n == 0) return;
    SFM_CUDA_CHECK(cudaMalloc(&data_, n * sizeof(T)));
    size_ = n;
  }
  void release() noexcept {
    if (data_) cudaFree(data_);  // waits for the device: no kernel still uses the memory
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
};

// The CUDA backend: device memory in DeviceArray, kernels in kernels/cuda/*.cuh.
struct Cuda {
  template <class T>
  using Array = DeviceArray<T>;
  static constexpr const char* name = "cuda";
  static constexpr BackendKind kind = BackendKind::cuda;
  static constexpr bool host_memory = false;
};

// Waits for the work queued on the compute stream (timing, host reads of results).
inline void synchronize(Cuda) { SFM_CUDA_CHECK(cudaStreamSynchronize(cuda_context().stream)); }

}  // namespace sfm
