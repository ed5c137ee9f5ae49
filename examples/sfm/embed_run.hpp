// The model half of `sfm embed`, shared by embed.cpp (the Cpu backend) and cuda.cu (the Cuda
// backend, compiled by nvcc): build the encoder of a checkpoint at the asked precision and run
// infer/embed.hpp's engine over the world.
#pragma once

#include "sfm/comm/serial.hpp"
#include "sfm/infer/embed.hpp"
#include "sfm/kernels/precision.hpp"
#include "sfm/train/checkpoint.hpp"

namespace sfm {
class MpiComm;
}

namespace sfm::cli {

// Everything an embedding run needs once the inputs are checked and the output is open.
struct EmbedRequest {
  ModelConfig config;
  const SafetensorsFile* checkpoint = nullptr;
  std::string checkpoint_path;
  const VolumeSource* volume = nullptr;
  WindowPlan plan;
  EmbedOptions options;
  PrecisionKind precision = PrecisionKind::fp32;
  int64_t first_slab = 0;
  SlabSink sink;          // rank 0
  ProgressSink progress;  // rank 0
};

template <KernelBackend Backend, Communicator Comm>
void run_embedding(const EmbedRequest& r, Comm& world) {
  visit_precision(r.precision, [&]<Precision Prec>(Prec) {
    VitMae<Backend, Prec> model(r.config);
    load_model_weights(model, *r.checkpoint, r.checkpoint_path);
    embed_survey(model, *r.volume, r.plan, world, r.options, r.first_slab, r.sink, r.progress);
  });
}

// cuda.cu: the Cuda backend on the current GPU (no launcher) or on GPU local_rank % devices.
void embed_cuda(const EmbedRequest& request, SerialComm& world);
void embed_cuda(const EmbedRequest& request, MpiComm& world);

}  // namespace sfm::cli
