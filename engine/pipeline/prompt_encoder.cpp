#include "engine/pipeline/prompt_encoder.h"

#include "engine/util/status.h"

namespace onereward::pipeline {

namespace {

torch::Tensor ids_tensor(const std::vector<std::vector<int64_t>>& rows) {
  const int64_t B = static_cast<int64_t>(rows.size());
  const int64_t S = static_cast<int64_t>(rows.front().size());
  torch::Tensor t = torch::empty({B, S}, torch::kLong);
  auto acc = t.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    if (static_cast<int64_t>(rows[b].size()) != S) throw_error(StatusCode::kInternal, "tokenizer returned ragged rows");
    for (int64_t s = 0; s < S; ++s) acc[b][s] = rows[b][s];
  }
  return t;
}

const std::vector<std::string>& resolve_prompts_2(const std::vector<std::string>& prompts,
                                                  const std::vector<std::string>& prompts_2) {
  check_arg(!prompts.empty(), "at least one prompt is required");
  if (prompts_2.empty()) return prompts;  // `prompt_2 = prompt_2 or prompt`
  check_arg(prompts_2.size() == prompts.size(), "prompt_2 has " + std::to_string(prompts_2.size()) +
                                                    " entries, prompt has " + std::to_string(prompts.size()));
  return prompts_2;
}

}  // namespace

PromptEncoder::PromptEncoder(PromptEncoder&&) noexcept = default;
PromptEncoder& PromptEncoder::operator=(PromptEncoder&&) noexcept = default;
PromptEncoder::~PromptEncoder() = default;

PromptEncoder PromptEncoder::load(const std::string& pipeline_dir, const PromptEncoderOptions& options) {
  PromptEncoder pe;
  pe.placement_ = options.placement;
  pe.output_dtype_ = options.output_dtype.value_or(options.placement.dtype);
  // `new T(T::load())`: guaranteed copy elision, no move constructor needed.
  pe.clip_tok_.reset(new ClipTokenizer(ClipTokenizer::load(pipeline_dir + "/tokenizer")));
  pe.t5_tok_.reset(new T5Tokenizer(T5Tokenizer::load(pipeline_dir + "/tokenizer_2")));
  pe.clip_ = models::load_clip_text_model(pipeline_dir + "/text_encoder", options.placement);
  pe.t5_ = models::load_t5_encoder(pipeline_dir + "/text_encoder_2", options.placement);
  pe.cache_ = std::make_unique<PromptCache>(options.cache_budget_bytes);
  const int64_t clip_len = pe.clip_tok_->max_length();
  if (clip_len < 2 || clip_len > pe.clip_->config().max_position_embeddings) {
    throw_error(StatusCode::kDataLoss, pipeline_dir + "/tokenizer/tokenizer_config.json: model_max_length " +
                                           std::to_string(clip_len) + " does not fit text_encoder's " +
                                           "max_position_embeddings " +
                                           std::to_string(pe.clip_->config().max_position_embeddings));
  }
  return pe;
}

PromptTokens PromptEncoder::tokenize(const std::vector<std::string>& prompts, const std::vector<std::string>& prompts_2,
                                     int64_t max_sequence_length) const {
  const auto& p2 = resolve_prompts_2(prompts, prompts_2);
  check_arg(max_sequence_length >= 2 && max_sequence_length <= kMaxT5SequenceLength,
            "max_sequence_length must be in [2, " + std::to_string(kMaxT5SequenceLength) + "], got " +
                std::to_string(max_sequence_length));
  std::vector<std::vector<int64_t>> clip_rows, t5_rows;
  clip_rows.reserve(prompts.size());
  t5_rows.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    clip_rows.push_back(clip_tok_->encode(prompts[i]));
    t5_rows.push_back(t5_tok_->encode(p2[i], max_sequence_length));
  }
  return {ids_tensor(clip_rows), ids_tensor(t5_rows)};
}

PromptEmbeds PromptEncoder::encode_tokens(const PromptTokens& tokens) {
  check_arg(tokens.clip_input_ids.defined() && tokens.t5_input_ids.defined() && tokens.clip_input_ids.dim() == 2 &&
                tokens.t5_input_ids.dim() == 2 && tokens.clip_input_ids.size(0) == tokens.t5_input_ids.size(0),
            "prompt tokens must be [B, S] id tensors with the same batch size");
  torch::NoGradGuard no_grad;
  PromptEmbeds out;
  // _get_clip_prompt_embeds: pooler_output, cast; _get_t5_prompt_embeds: last hidden state, cast.
  out.pooled_prompt_embeds = clip_->forward(tokens.clip_input_ids).pooled.to(output_dtype_);
  out.prompt_embeds = t5_->forward(tokens.t5_input_ids).to(output_dtype_);
  out.text_ids = torch::zeros({tokens.t5_input_ids.size(1), 3},
                              torch::TensorOptions().dtype(output_dtype_).device(placement_.device));
  return out;
}

PromptEmbeds PromptEncoder::encode(const std::vector<std::string>& prompts, const std::vector<std::string>& prompts_2,
                                   int64_t max_sequence_length) {
  return encode_tokens(tokenize(prompts, prompts_2, max_sequence_length));
}

PromptEmbeds PromptEncoder::encode_cached(const std::vector<std::string>& prompts,
                                          const std::vector<std::string>& prompts_2, int64_t max_sequence_length) {
  const auto& p2 = resolve_prompts_2(prompts, prompts_2);
  std::vector<PromptEmbeds> rows;
  rows.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    PromptKey key{prompts[i], p2[i], max_sequence_length};
    if (auto hit = cache_->get(key)) {
      rows.push_back(std::move(*hit));
      continue;
    }
    // Misses are encoded one at a time (a repeated prompt in the same call then hits).
    // Two threads missing the same key at once both encode it; the later put wins.
    PromptEmbeds e = encode({prompts[i]}, {p2[i]}, max_sequence_length);
    cache_->put(key, e);
    rows.push_back(std::move(e));
  }
  return rows.size() == 1 ? rows.front() : concat_rows(rows);
}

PromptEmbeds repeat_each(const PromptEmbeds& e, int64_t n) {
  check_arg(n >= 1, "num_images_per_prompt must be >= 1");
  if (n == 1) return e;
  // The reference's repeat(1, n, 1).view(B * n, S, D) == repeat_interleave on the batch dim.
  return {e.prompt_embeds.repeat_interleave(n, 0), e.pooled_prompt_embeds.repeat_interleave(n, 0), e.text_ids};
}

PromptEmbeds concat_rows(const std::vector<PromptEmbeds>& parts) {
  check_arg(!parts.empty(), "no prompt embeddings to concatenate");
  if (parts.size() == 1) return parts.front();
  std::vector<torch::Tensor> embeds, pooled;
  for (const auto& p : parts) {
    check_arg(p.prompt_embeds.size(1) == parts.front().prompt_embeds.size(1),
              "prompt embeddings with different sequence lengths cannot share a batch");
    embeds.push_back(p.prompt_embeds);
    pooled.push_back(p.pooled_prompt_embeds);
  }
  return {torch::cat(embeds, 0), torch::cat(pooled, 0), parts.front().text_ids};
}

}  // namespace onereward::pipeline
