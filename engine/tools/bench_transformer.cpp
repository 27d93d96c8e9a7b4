// Transformer forward benchmark at the presets (random weights, no files).
#include <iostream>

#include "engine/models/flux_transformer.h"
#include "engine/tools/bench.h"
#include "engine/tools/presets.h"

namespace onereward::tools {

void bench_transformer(const BenchEnv& env, const std::vector<std::string>& presets, const std::vector<int>& sizes,
                       const std::vector<int>& rows_list, std::vector<BenchRow>* out) {
  c10::InferenceMode guard;
  for (const auto& preset : presets) {
    models::FluxTransformerConfig cfg = transformer_preset(preset);
    models::FluxTransformer model(cfg);
    models::randomize_parameters(*model, 0);
    model->to(env.device, env.dtype);
    const int64_t txt = 512;
    for (int size : sizes) {
      const int64_t h = size / 16, w = size / 16;
      const int64_t img = h * w;
      for (int rows : rows_list) {
        auto opts = torch::TensorOptions().device(env.device).dtype(env.dtype);
        models::FluxInputs in;
        in.hidden_states = torch::randn({rows, img, cfg.in_channels}, opts);
        in.encoder_hidden_states = torch::randn({rows, txt, cfg.joint_attention_dim}, opts);
        in.pooled_projections = torch::randn({rows, cfg.pooled_projection_dim}, opts);
        in.timestep = torch::full({rows}, 0.5, opts);
        in.guidance = torch::full({rows}, 1.0, opts);
        in.img_ids = torch::zeros({img, 3}, opts.dtype(torch::kFloat32));
        in.img_ids.select(1, 1).copy_(torch::arange(h).repeat_interleave(w));
        in.img_ids.select(1, 2).copy_(torch::arange(w).repeat(h));
        in.txt_ids = torch::zeros({txt, 3}, opts.dtype(torch::kFloat32));
        const double ms = time_median_ms(env, [&] { model->forward(in); });
        BenchRow r;
        r.what = "transformer forward";
        r.preset = preset;
        r.shape = std::to_string(size) + "x" + std::to_string(size) + " rows=" + std::to_string(rows) +
                  " tokens=" + std::to_string(img) + "+" + std::to_string(txt);
        r.ms = ms;
        r.gflop = model->flops(rows, img, txt) / 1e9;
        r.peak_mem_mb = peak_rss_mb();
        out->push_back(r);
        std::cerr << "  " << r.what << " " << preset << " " << r.shape << ": " << ms << " ms\n";
      }
    }
  }
}

}  // namespace onereward::tools
