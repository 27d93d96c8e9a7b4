// Per-stage benchmark of one job's work with random weights built in memory (no files, so
// any preset, the full-size one included, can be measured on a machine without weights):
// text encoding (CLIP + T5 forwards; tokenization is well under a millisecond and left out
// so the engine-only build can run this), VAE encode, one denoising step (transformer
// forward over all rows + true-CFG mix + Euler update) and VAE decode.
#include <iostream>

#include "engine/models/clip_text.h"
#include "engine/models/flux_transformer.h"
#include "engine/models/t5_encoder.h"
#include "engine/models/vae.h"
#include "engine/sched/flow_match.h"
#include "engine/sched/latents.h"
#include "engine/tools/bench.h"
#include "engine/tools/presets.h"

namespace onereward::tools {
namespace {

// Analytic FLOPs (2 x multiply-adds) of the VAE, so its GFLOP/s can be compared across sizes:
// 3x3 / 1x1 convolutions at each resolution plus the mid block's single-head attention,
// whose S^2 term makes the VAE's cost grow faster than its pixel count.
struct VaeFlops {
  const models::VaeConfig& c;
  double conv(int64_t cin, int64_t cout, int64_t k, double pixels) const {
    return 2.0 * static_cast<double>(cin * cout * k * k) * pixels;
  }
  double resnet(int64_t cin, int64_t cout, double pixels) const {
    return conv(cin, cout, 3, pixels) + conv(cout, cout, 3, pixels) + (cin != cout ? conv(cin, cout, 1, pixels) : 0);
  }
  double mid(int64_t ch, double tokens) const {
    double f = 2 * resnet(ch, ch, tokens);
    if (c.mid_block_add_attention) f += 2.0 * 4 * ch * ch * tokens + 2.0 * 2 * tokens * tokens * ch;
    return f;
  }
  double encode(int64_t h, int64_t w) const {
    const auto& ch = c.block_out_channels;
    double px = static_cast<double>(h * w);
    double f = conv(c.in_channels, ch[0], 3, px);
    int64_t prev = ch[0];
    for (size_t i = 0; i < ch.size(); ++i) {
      for (int64_t l = 0; l < c.layers_per_block; ++l) f += resnet(l == 0 ? prev : ch[i], ch[i], px);
      prev = ch[i];
      if (i + 1 < ch.size()) {
        px /= 4;
        f += conv(ch[i], ch[i], 3, px);
      }
    }
    return f + mid(ch.back(), px) + conv(ch.back(), 2 * c.latent_channels, 3, px);
  }
  double decode(int64_t h, int64_t w) const {
    const auto& ch = c.block_out_channels;
    const int64_t n = static_cast<int64_t>(ch.size());
    double px = static_cast<double>(h * w) / static_cast<double>((int64_t{1} << (n - 1)) * (int64_t{1} << (n - 1)));
    double f = conv(c.latent_channels, ch.back(), 3, px) + mid(ch.back(), px);
    int64_t prev = ch.back();
    for (int64_t i = n - 1; i >= 0; --i) {
      for (int64_t l = 0; l <= c.layers_per_block; ++l) f += resnet(l == 0 ? prev : ch[i], ch[i], px);
      prev = ch[i];
      if (i > 0) {
        px *= 4;
        f += conv(ch[i], ch[i], 3, px);
      }
    }
    return f + conv(ch[0], c.out_channels, 3, px);
  }
};

}  // namespace

void bench_stages(const BenchEnv& env, const std::vector<std::string>& presets, const std::vector<int>& sizes,
                  const std::vector<int>& rows_list, std::vector<BenchRow>* out) {
  c10::InferenceMode guard;
  auto opts = torch::TensorOptions().device(env.device).dtype(env.dtype);
  auto add = [&](const std::string& what, const std::string& preset, const std::string& shape, double ms,
                 double gflop) {
    BenchRow r{what, preset, shape, ms, gflop, peak_rss_mb()};
    out->push_back(r);
    std::cerr << "  " << what << " " << preset << " " << shape << ": " << ms << " ms\n";
  };
  for (const auto& preset : presets) {
    const PipelinePreset pp = pipeline_preset(preset);
    models::ClipTextModel clip(pp.clip);
    models::T5EncoderModel t5(pp.t5);
    models::AutoencoderKL vae(pp.vae);
    models::FluxTransformer tr(pp.transformer);
    uint64_t seed = 0;
    for (torch::nn::Module* m : std::vector<torch::nn::Module*>{clip.get(), t5.get(), vae.get(), tr.get()}) {
      models::randomize_parameters(*m, seed++);
      m->to(env.device, env.dtype);
    }
    const int64_t txt = 512;

    // Text: one prompt (the negative prompt is a cache hit in a serving engine).
    auto ids77 = torch::randint(0, pp.clip.vocab_size, {1, pp.clip.max_position_embeddings}, torch::kLong);
    auto ids512 = torch::randint(0, pp.t5.vocab_size, {1, txt}, torch::kLong);
    add("text encode", preset, "1 prompt, 77+512 tokens", time_median_ms(env, [&] {
          clip->forward(ids77);
          t5->forward(ids512);
        }),
        0);

    const int64_t vsf = pp.vae.vae_scale_factor();
    for (int size : sizes) {
      const std::string px = std::to_string(size) + "x" + std::to_string(size);
      auto image = torch::rand({1, pp.vae.in_channels, size, size}, opts) * 2 - 1;
      const VaeFlops vf{pp.vae};
      add("vae encode", preset, px, time_median_ms(env, [&] { vae->encode(image); }), vf.encode(size, size) / 1e9);

      const int64_t lh = sched::latent_side(size, vsf);
      const int64_t S = (lh / 2) * (lh / 2);
      auto z = torch::randn({1, pp.vae.latent_channels, lh, lh}, opts);
      add("vae decode", preset, px, time_median_ms(env, [&] { vae->decode(z); }), vf.decode(size, size) / 1e9);

      auto img_ids = sched::latent_image_ids(lh / 2, lh / 2, torch::TensorOptions().device(env.device));
      auto txt_ids = torch::zeros({txt, 3}, torch::TensorOptions().device(env.device));
      const models::FluxRope rope = tr->rope(txt_ids, img_ids);
      const int64_t packed = 4 * pp.vae.latent_channels;
      for (int rows : rows_list) {
        // rows = 2 per image with true CFG: half negative, half positive.
        const int64_t B = std::max(1, rows / 2);
        auto latents = torch::randn({B, S, packed}, opts);
        auto cond = torch::randn({B, S, pp.transformer.in_channels - packed}, opts);
        models::FluxInputs in;
        in.encoder_hidden_states = torch::randn({rows, txt, pp.transformer.joint_attention_dim}, opts);
        in.pooled_projections = torch::randn({rows, pp.transformer.pooled_projection_dim}, opts);
        in.timestep = torch::full({rows}, 0.5, opts);
        in.guidance = torch::full({rows}, 1.0, opts);
        in.img_ids = img_ids;
        in.txt_ids = txt_ids;
        in.rope = rope;
        const double ms = time_median_ms(env, [&] {
          torch::Tensor x = torch::cat({latents, cond}, 2);
          in.hidden_states = rows >= 2 * B ? torch::cat({x, x}, 0) : x;
          torch::Tensor o = tr->forward(in);
          torch::Tensor pred = rows >= 2 * B ? o.narrow(0, 0, B) + 4.0 * (o.narrow(0, B, B) - o.narrow(0, 0, B)) : o;
          sched::euler_step(latents, pred, 0.5f, 0.4f);
        });
        add("denoise step", preset, px + " rows=" + std::to_string(rows) + " tokens=" + std::to_string(S) + "+512", ms,
            tr->flops(rows, S, txt) / 1e9);
      }
    }
  }
}

}  // namespace onereward::tools
