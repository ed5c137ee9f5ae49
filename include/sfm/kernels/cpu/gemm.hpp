// Row-major matrix product for the CPU backend, the one GEMM entry point of its kernels:
//   C[m × n] = op(A)[m × k] · op(B)[k × n]  (+ C when accumulating),  op(X) = X or Xᵀ.
//
// fp32 runs on oneDNN's sgemm when sfm is built with it (SFM_HAVE_ONEDNN, found by CMake; Debian's
// libdnnl-dev): on sfm's linear shapes it is 1.3–1.4× Eigen's GEMM on two AVX-512 cores
// (docs/cpu.md). double, and builds without oneDNN, use Eigen. Both fix the reduction order of each
// output element by the shape, so results do not depend on buffer alignment; oneDNN's do not
// depend on the OpenMP thread count either, while Eigen sizes its blocks by it
// (tests/kernels/test_cpu_gemm.cpp checks this, and both against a double loop). Both run on the
// OpenMP pool. Call it outside parallel regions: inside one, oneDNN's sgemm is 5–10× slower than
// Eigen's on small products (measured on attention's per-head tiles), so attention_blocks.hpp keeps
// Eigen's products there.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <type_traits>

#ifdef SFM_HAVE_ONEDNN
#include <dnnl.h>
#endif

#include "sfm/core/error.hpp"
#include "sfm/kernels/cpu/backend.hpp"

namespace sfm {

enum class Transpose : bool { no = false, yes = true };

// The matrices' shapes and leading dimensions (elements between rows), as BLAS names them.
struct GemmShape {
  Transpose trans_a = Transpose::no, trans_b = Transpose::no;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
};

namespace cpu_detail {
template <class T>
using StridedRowMajor = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
                                   Eigen::OuterStride<>>;

// The stored matrix behind op(X): rows × cols as laid out in memory.
template <class T>
StridedRowMajor<T> stored(const T* x, Transpose trans, int64_t op_rows, int64_t op_cols, int64_t ld) {
  return trans == Transpose::yes ? StridedRowMajor<T>(x, op_cols, op_rows, Eigen::OuterStride<>(ld))
                                 : StridedRowMajor<T>(x, op_rows, op_cols, Eigen::OuterStride<>(ld));
}

template <class T>
void eigen_gemm(const GemmShape& s, const T* a, const T* b, bool accumulate, T* c) {
  Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::OuterStride<>> C(
      c, s.m, s.n, Eigen::OuterStride<>(s.ldc));
  const auto A = stored(a, s.trans_a, s.m, s.k, s.lda);
  const auto B = stored(b, s.trans_b, s.k, s.n, s.ldb);
  // Four spellings, so Eigen sees the transposes as part of the product expression.
  const bool ta = s.trans_a == Transpose::yes, tb = s.trans_b == Transpose::yes;
  if (accumulate) {
    if (ta && tb) C.noalias() += A.transpose() * B.transpose();
    else if (ta) C.noalias() += A.transpose() * B;
    else if (tb) C.noalias() += A * B.transpose();
    else C.noalias() += A * B;
  } else {
    if (ta && tb) C.noalias() = A.transpose() * B.transpose();
    else if (ta) C.noalias() = A.transpose() * B;
    else if (tb) C.noalias() = A * B.transpose();
    else C.noalias() = A * B;
  }
}
}  // namespace cpu_detail

// c = op(a) · op(b), or c += op(a) · op(b) when `accumulate`.
template <class T>
void gemm(Cpu, const GemmShape& s, const T* a, const T* b, bool accumulate, T* c) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gemm: float or double");
  if (s.m == 0 || s.n == 0) return;
#ifdef SFM_HAVE_ONEDNN
  if constexpr (std::is_same_v<T, float>) {
    const auto flag = [](Transpose t) { return t == Transpose::yes ? 'T' : 'N'; };
    const dnnl_status_t status = dnnl_sgemm(flag(s.trans_a), flag(s.trans_b), s.m, s.n, s.k, 1.0f, a, s.lda, b,
                                            s.ldb, accumulate ? 1.0f : 0.0f, c, s.ldc);
    SFM_CHECK(status == dnnl_success, "oneDNN sgemm failed (status ", int(status), ") on m ", s.m, " n ", s.n,
              " k ", s.k);
    return;
  }
#endif
  cpu_detail::eigen_gemm(s, a, b, accumulate, c);
}

}  // namespace sfm
