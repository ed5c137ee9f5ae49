// train/flops.hpp against a per-layer count written out by hand for a small config: every matmul
// of the forward pass (patch embedding, qkv, QKᵀ, PV, proj, fc1, fc2, decoder embedding, decoder
// blocks, decoder prediction) at 2·rows·in·out, and backward as twice the forward, as the header's
// convention says (matmul FLOPs only; norms, softmax and GELU are not counted).
#include <vector>

#include "sfm/train/flops.hpp"
#include "sfm_test.hpp"

namespace {

// crop 8×8×16, patch 4³: N = 2·2·4 = 16 tokens of P = 64 voxels; encoder 32 wide, decoder 16 wide,
// one block each, MLP ratio 4; 4 tokens stay visible.
sfm::ModelConfig small_config() {
  sfm::ModelConfig c;
  c.crop = {8, 8, 16};
  c.patch = {4, 4, 4};
  c.dim = 32, c.depth = 1, c.heads = 4;
  c.decoder_dim = 16, c.decoder_depth = 1, c.decoder_heads = 2;
  c.mlp_ratio = 4;
  return c;
}
constexpr int64_t kLenKeep = 4;

// One matmul: rows × in times in × out.
struct Matmul {
  const char* name;
  double rows, in, out;
};

double flops(const std::vector<Matmul>& layers) {
  double sum = 0;
  for (const Matmul& m : layers) sum += 2.0 * m.rows * m.in * m.out;
  return sum;
}

// A transformer block over L rows of width D: attention QKᵀ is L×d by d×L and PV is L×L by L×d
// per head of width d = D/H, so over all heads each is 2·L·L·D whatever H is.
std::vector<Matmul> block(double L, double D) {
  return {{"qkv", L, D, 3 * D}, {"QK^T", L, D, L}, {"PV", L, L, D},
          {"proj", L, D, D},    {"fc1", L, D, 4 * D}, {"fc2", L, 4 * D, D}};
}

}  // namespace

TEST_CASE("forward_flops equals the per-layer matmul count of a small config") {
  // Encoder: 4 visible tokens + cls = 5 rows; decoder: 16 tokens + cls = 17 rows.
  std::vector<Matmul> layers{{"patch_embed (every token)", 16, 64, 32}};
  for (const Matmul& m : block(5, 32)) layers.push_back(m);
  layers.push_back({"decoder_embed", 5, 32, 16});
  for (const Matmul& m : block(17, 16)) layers.push_back(m);
  layers.push_back({"decoder_pred (cls row included)", 17, 16, 64});
  // By hand: patch embed 65,536; encoder block 30,720 + 1,600 + 1,600 + 10,240 + 40,960 + 40,960 =
  // 126,080; decoder embed 5,120; decoder block 26,112 + 9,248 + 9,248 + 8,704 + 34,816 + 34,816 =
  // 122,944; decoder pred 34,816; total 354,496.
  REQUIRE(flops(layers) == 354496.0);
  CHECK(sfm::forward_flops(small_config(), kLenKeep) == 354496.0);
}

TEST_CASE("train_step_flops is three forwards (forward + twice for backward) per sample") {
  CHECK(sfm::train_step_flops(small_config(), kLenKeep, 1) == 3.0 * 354496.0);
  CHECK(sfm::train_step_flops(small_config(), kLenKeep, 2) == 6.0 * 354496.0);
}

TEST_CASE("flops follow depth, len_keep and the MLP ratio, not the head count") {
  const sfm::ModelConfig c = small_config();
  // A second encoder block adds one block of 5 rows × 32; a second decoder block one of 17 × 16.
  sfm::ModelConfig deeper = c;
  deeper.depth = 2, deeper.decoder_depth = 2;
  CHECK(sfm::forward_flops(deeper, kLenKeep) == 354496.0 + flops(block(5, 32)) + flops(block(17, 16)));
  // Heads split D; the attention FLOPs do not change.
  sfm::ModelConfig heads = c;
  heads.heads = 8, heads.decoder_heads = 1;
  CHECK(sfm::forward_flops(heads, kLenKeep) == 354496.0);
  // One more visible token: the encoder block and decoder embedding see 6 rows instead of 5.
  const double five = flops(block(5, 32)) + flops({{"decoder_embed", 5, 32, 16}});
  const double six = flops(block(6, 32)) + flops({{"decoder_embed", 6, 32, 16}});
  CHECK(sfm::forward_flops(c, kLenKeep + 1) == 354496.0 - five + six);
  // MLP ratio 2 halves fc1 and fc2: encoder 2·2·5·32·128 → half, decoder 2·2·17·16·64 → half.
  sfm::ModelConfig narrow = c;
  narrow.mlp_ratio = 2;
  CHECK(sfm::forward_flops(narrow, kLenKeep) == 354496.0 - (40960.0 + 34816.0));
}
