// Column sums in a fixed order (CPU), for the parameter gradients of row-batched layers (the
// bias of linear_backward, γ and β of layernorm_backward):
//   sums_k[j] += G(Σ_{r = 0, 1, …, rows−1} term(r, j)[k])   for every column j < cols,
// each sum taken in double over the rows in ascending order, then converted to G once and added.
//
// Walking down one column of a row-major [rows, cols] matrix strides by `cols` elements per step.
// Here each OpenMP thread instead owns a contiguous range of columns and walks the rows in order,
// adding each row's segment of its range into one double per column: unit stride, vectorised
// across columns, while every column still receives its terms in row order. So the result is the
// same bit for bit whatever the thread count, the split of the columns or the buffers' alignment
// (Eigen's vectorised reductions group terms by pointer alignment, which these sums must not).
//
// Each term is rounded to double before it is added: a row's terms are written to a buffer in one
// loop and added in another, so the compiler cannot contract a product inside a term with the
// addition into one FMA (GCC does so across statements at its default -ffp-contract=fast, and in
// some iterations of a loop but not others, which made the plain loops' results codegen-dependent).
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>

namespace sfm::cpu_detail {

// `term(r, j)` returns the std::array<double, N> of the terms that row r adds to column j of
// each of the N outputs `sum, more...` (all G*, each [cols]).
template <class Term, class G, std::same_as<G>... More>
void add_column_sums(int64_t rows, int64_t cols, Term term, G* sum, More*... more) {
  constexpr size_t N = 1 + sizeof...(More);
  G* const sums[N] = {sum, more...};
  // Columns per pass over the rows: the accumulators and a row's terms (2·N·2 KB) stay in L1, on
  // the stack.
  constexpr int64_t block = 256;
  // Threads' ranges start at multiples of 16 columns (a 64-byte line of fp32) where they can.
  constexpr int64_t group = 16;
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
    const int64_t groups = (cols + group - 1) / group;
    const int64_t first = std::min(cols, groups * thread / threads * group);
    const int64_t last = std::min(cols, groups * (thread + 1) / threads * group);
    for (int64_t j0 = first; j0 < last; j0 += block) {
      const int64_t width = std::min(block, last - j0);
      double acc[N][block], row_terms[N][block];
      for (size_t k = 0; k < N; ++k) std::fill_n(acc[k], width, 0.0);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < width; ++j) {
          const std::array<double, N> terms = term(r, j0 + j);
          for (size_t k = 0; k < N; ++k) row_terms[k][j] = terms[k];
        }
        for (size_t k = 0; k < N; ++k)
          for (int64_t j = 0; j < width; ++j) acc[k][j] += row_terms[k][j];
      }
      for (size_t k = 0; k < N; ++k)
        for (int64_t j = 0; j < width; ++j) sums[k][j0 + j] += G(acc[k][j]);
    }
  }
}

}  // namespace sfm::cpu_detail
