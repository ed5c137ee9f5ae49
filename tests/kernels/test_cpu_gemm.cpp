// The CPU backend's GEMM (kernels/cpu/gemm.hpp; oneDNN's sgemm for fp32 where built with it) against
// a plain double loop, on every transpose combination, padded leading dimensions and odd shapes,
// overwrite and accumulate; and the same bits whatever the buffers' alignment (and, on oneDNN, the
// thread count), which the trainer's bitwise resume and the parallel policies' exactness tests rest on.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "sfm/core/rng.hpp"
#include "sfm/kernels/cpu/gemm.hpp"
#include "sfm_test.hpp"

using sfm::Cpu;
using sfm::GemmShape;
using sfm::Transpose;

namespace {

// op(X)[i, j] of a row-major X with leading dimension ld.
double op_at(const std::vector<float>& x, Transpose t, int64_t ld, int64_t i, int64_t j) {
  return t == Transpose::yes ? x[size_t(j * ld + i)] : x[size_t(i * ld + j)];
}

struct Case {
  GemmShape shape;
  std::vector<float> a, b, c;
};

// Random A, B and C with leading dimensions padded by `pad` elements.
Case make_case(Transpose ta, Transpose tb, int64_t m, int64_t n, int64_t k, int64_t pad, uint64_t seed) {
  Case c;
  const int64_t a_rows = ta == Transpose::yes ? k : m, a_cols = ta == Transpose::yes ? m : k;
  const int64_t b_rows = tb == Transpose::yes ? n : k, b_cols = tb == Transpose::yes ? k : n;
  c.shape = {ta, tb, m, n, k, a_cols + pad, b_cols + pad, n + pad};
  c.a.resize(size_t(a_rows * c.shape.lda));
  c.b.resize(size_t(b_rows * c.shape.ldb));
  c.c.resize(size_t(m * c.shape.ldc));
  sfm::Rng(seed, 1).fill_normal(c.a, 0.0f, 1.0f);
  sfm::Rng(seed, 2).fill_normal(c.b, 0.0f, 1.0f);
  sfm::Rng(seed, 3).fill_normal(c.c, 0.0f, 1.0f);
  return c;
}

// gemm's result on copies of the case's buffers placed `offset` floats into fresh allocations.
std::vector<float> run_at_offset(const Case& c, bool accumulate, size_t offset) {
  std::vector<float> a(c.a.size() + offset), b(c.b.size() + offset), out(c.c.size() + offset);
  std::memcpy(a.data() + offset, c.a.data(), c.a.size() * sizeof(float));
  std::memcpy(b.data() + offset, c.b.data(), c.b.size() * sizeof(float));
  std::memcpy(out.data() + offset, c.c.data(), c.c.size() * sizeof(float));
  sfm::gemm(Cpu{}, c.shape, a.data() + offset, b.data() + offset, accumulate, out.data() + offset);
  return {out.begin() + std::ptrdiff_t(offset), out.end()};
}

}  // namespace

TEST_CASE("gemm matches a double loop on every transpose, padded and odd shapes, overwrite and accumulate") {
  struct Dims { int64_t m, n, k, pad; };
  const Dims dims[] = {{1, 1, 1, 0}, {7, 5, 3, 2}, {65, 33, 17, 0}, {129, 64, 129, 5}, {300, 130, 257, 1}};
  uint64_t seed = 0;
  for (const Dims d : dims)
    for (Transpose ta : {Transpose::no, Transpose::yes})
      for (Transpose tb : {Transpose::no, Transpose::yes})
        for (bool accumulate : {false, true}) {
          const Case c = make_case(ta, tb, d.m, d.n, d.k, d.pad, ++seed);
          const std::vector<float> got = run_at_offset(c, accumulate, 0);
          double worst = 0;
          for (int64_t i = 0; i < d.m; ++i)
            for (int64_t j = 0; j < d.n; ++j) {
              double ref = accumulate ? c.c[size_t(i * c.shape.ldc + j)] : 0.0;
              double magnitude = std::abs(ref);
              for (int64_t p = 0; p < d.k; ++p) {
                const double term = op_at(c.a, ta, c.shape.lda, i, p) * op_at(c.b, tb, c.shape.ldb, p, j);
                ref += term;
                magnitude += std::abs(term);
              }
              // fp32 accumulation: k roundings of at most one ulp of the running magnitude each.
              worst = std::max(worst, std::abs(got[size_t(i * c.shape.ldc + j)] - ref) / (magnitude * 1e-7 * double(d.k + 1)));
            }
          INFO("m " << d.m << " n " << d.n << " k " << d.k << " trans " << int(ta) << int(tb) << " accumulate " << accumulate);
          CHECK(worst <= 1.0);
          // The padding between rows of C is never written.
          for (int64_t i = 0; i < d.m; ++i)
            for (int64_t j = d.n; j < c.shape.ldc; ++j)
              CHECK(got[size_t(i * c.shape.ldc + j)] == c.c[size_t(i * c.shape.ldc + j)]);
        }
}

TEST_CASE("gemm that overwrites C only writes it: NaN there does not propagate") {
  Case c = make_case(Transpose::no, Transpose::yes, 33, 17, 9, 0, 99);
  const std::vector<float> expected = run_at_offset(c, false, 0);
  std::fill(c.c.begin(), c.c.end(), std::numeric_limits<float>::quiet_NaN());
  CHECK(run_at_offset(c, false, 0) == expected);
}

TEST_CASE("gemm gives the same bits at any buffer alignment (and, on oneDNN, thread count)") {
  // The model's linear shapes (small at batch 8): forward, input gradient, weight gradient.
  const Case cases[] = {make_case(Transpose::no, Transpose::yes, 1032, 576, 192, 0, 11),
                        make_case(Transpose::no, Transpose::no, 4104, 128, 512, 0, 12),
                        make_case(Transpose::yes, Transpose::no, 512, 128, 4104, 0, 13),
                        make_case(Transpose::no, Transpose::yes, 129, 129, 64, 0, 14)};
  const int saved_threads = omp_get_max_threads();
  for (const Case& c : cases) {
    omp_set_num_threads(2);
    const std::vector<float> reference = run_at_offset(c, true, 0);
#ifdef SFM_HAVE_ONEDNN
    const std::vector<int> thread_counts = {1, 2, 3};
#else
    const std::vector<int> thread_counts = {2};  // Eigen sizes its blocks by the thread count
#endif
    for (int threads : thread_counts)
      for (size_t offset : {0, 1, 3, 16}) {
        omp_set_num_threads(threads);
        INFO("m " << c.shape.m << " n " << c.shape.n << " k " << c.shape.k << " threads " << threads << " offset "
                  << offset);
        const std::vector<float> got = run_at_offset(c, true, offset);
        CHECK(std::memcmp(got.data(), reference.data(), got.size() * sizeof(float)) == 0);
      }
  }
  omp_set_num_threads(saved_threads);
}
