// Prompt encoding of the FLUX pipeline (diffusers FluxPipeline.encode_prompt): CLIP-L's
// pooled output of `prompt` and T5's last hidden state of `prompt_2` (defaulting to
// `prompt`), plus all-zero text ids.
//
//   prompt   -> tokenizer   (77 ids, padded with <|endoftext|>) -> text_encoder   -> pooled [B, D_clip]
//   prompt_2 -> tokenizer_2 (max_sequence_length ids, </s> + <pad>) -> text_encoder_2 -> [B, S, D_t5]
//
// Neither encoder gets an attention mask (as in the reference): CLIP is causal, T5 attends
// its padding.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/checkpoint/weights.h"
#include "engine/models/clip_text.h"
#include "engine/models/t5_encoder.h"
#include "engine/pipeline/prompt_cache.h"
#include "engine/text/clip_tokenizer.h"
#include "engine/text/t5_tokenizer.h"

namespace onereward::pipeline {

/// Token ids of a batch of prompts (what the tokenizers produced, before the encoders).
struct PromptTokens {
  torch::Tensor clip_input_ids;  ///< [B, clip max_length (77)] int64, CPU
  torch::Tensor t5_input_ids;    ///< [B, max_sequence_length] int64, CPU
};

struct PromptEncoderOptions {
  /// Device and dtype the text encoders run in.
  TensorPlacement placement;
  /// dtype of the returned embeddings (the transformer's); defaults to placement.dtype.
  std::optional<torch::ScalarType> output_dtype;
  /// Byte budget of the embedding cache used by encode_cached(); 0 disables it.
  int64_t cache_budget_bytes = PromptCache::kDefaultBudgetBytes;
};

/// The reference's upper limit for max_sequence_length (FluxPipeline.check_inputs).
constexpr int64_t kMaxT5SequenceLength = 512;

class PromptEncoder {
 public:
  /// Loads text_encoder/, text_encoder_2/, tokenizer/ and tokenizer_2/ of a diffusers FLUX
  /// pipeline directory. Errors (onereward::Error) name the file.
  static PromptEncoder load(const std::string& pipeline_dir, const PromptEncoderOptions& options = {});

  PromptEncoder(PromptEncoder&&) noexcept;
  PromptEncoder& operator=(PromptEncoder&&) noexcept;
  ~PromptEncoder();

  /// Tokenizes as FluxPipeline does. `prompts_2` empty -> `prompts`; otherwise it must have
  /// the same length. max_sequence_length in [2, 512]. Throws Error(kInvalidArgument).
  PromptTokens tokenize(const std::vector<std::string>& prompts, const std::vector<std::string>& prompts_2 = {},
                        int64_t max_sequence_length = kMaxT5SequenceLength) const;

  /// Runs both encoders on the ids (one batched forward each).
  PromptEmbeds encode_tokens(const PromptTokens& tokens);

  /// FluxPipeline.encode_prompt(prompt, prompt_2, max_sequence_length=...) with
  /// num_images_per_prompt = 1 (see repeat_each). One batched forward per encoder.
  PromptEmbeds encode(const std::vector<std::string>& prompts, const std::vector<std::string>& prompts_2 = {},
                      int64_t max_sequence_length = kMaxT5SequenceLength);

  /// As encode(), through the cache: each prompt is looked up by (prompt, prompt_2,
  /// max_sequence_length) and a miss is encoded alone (batch 1) and stored, so a prompt's
  /// embeddings never depend on the batch it arrived in, and a hit is bit-identical to the
  /// miss that filled it. The returned tensors may be shared with the cache: read-only.
  PromptEmbeds encode_cached(const std::vector<std::string>& prompts, const std::vector<std::string>& prompts_2 = {},
                             int64_t max_sequence_length = kMaxT5SequenceLength);

  PromptCache& cache() { return *cache_; }
  models::ClipTextModel& clip() { return clip_; }
  models::T5EncoderModel& t5() { return t5_; }
  const ClipTokenizer& clip_tokenizer() const { return *clip_tok_; }
  const T5Tokenizer& t5_tokenizer() const { return *t5_tok_; }
  const TensorPlacement& placement() const { return placement_; }
  torch::ScalarType output_dtype() const { return output_dtype_; }

 private:
  PromptEncoder() = default;

  TensorPlacement placement_;
  torch::ScalarType output_dtype_ = torch::kFloat32;
  std::unique_ptr<ClipTokenizer> clip_tok_;
  std::unique_ptr<T5Tokenizer> t5_tok_;
  models::ClipTextModel clip_{nullptr};
  models::T5EncoderModel t5_{nullptr};
  std::unique_ptr<PromptCache> cache_;
};

/// Each row repeated n times, prompt-major (p0, p0, p1, p1): the reference's
/// num_images_per_prompt handling. text_ids is shared.
PromptEmbeds repeat_each(const PromptEmbeds& e, int64_t n);

/// Rows of several encodings stacked in order (e.g. [negative; positive] for true CFG).
/// All parts must share the sequence length.
PromptEmbeds concat_rows(const std::vector<PromptEmbeds>& parts);

}  // namespace onereward::pipeline
