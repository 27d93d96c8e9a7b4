// A byte-bounded, thread-safe LRU cache of prompt embeddings.
//
// Why: every true-CFG job encodes its negative prompt ("nsfw" by default) and the extend /
// remove tasks use fixed prompts, so most T5-XXL + CLIP passes of a busy server would
// recompute the same few tensors. A hit costs a map lookup; a miss runs both encoders.
//
// Why bytes, not entries: an entry's size is B·S·D_t5 (4 MiB for one 512-token FLUX
// prompt in bf16, 8 MiB in fp32, a few KiB for the tiny test models), so a byte budget is
// what bounds the device memory the cache may pin.
//
// Default 256 MiB: 64 FLUX prompts in bf16 (32 in fp32) — the handful of fixed prompts
// plus the recently repeated user prompts (retries, "generate 4 more"), at ~0.2 % of a
// 141 GB H200 (~0.3 % of an 80 GB card) next to ~34 GB of pipeline weights.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace onereward::pipeline {

/// What FluxPipeline.encode_prompt returns.
struct PromptEmbeds {
  torch::Tensor prompt_embeds;         ///< [B, S, D_t5] T5 last hidden state
  torch::Tensor pooled_prompt_embeds;  ///< [B, D_clip] CLIP pooled output
  torch::Tensor text_ids;              ///< [S, 3] zeros (text position ids for the RoPE)

  int64_t batch() const { return prompt_embeds.defined() ? prompt_embeds.size(0) : 0; }
  /// Bytes held by the three tensors.
  int64_t bytes() const;
};

/// Identity of a cached encoding. One entry holds one prompt (batch 1).
struct PromptKey {
  std::string prompt;    ///< CLIP text
  std::string prompt_2;  ///< T5 text (the caller resolves "defaults to prompt" first)
  int64_t max_sequence_length = 512;
};

class PromptCache {
 public:
  static constexpr int64_t kDefaultBudgetBytes = int64_t{256} << 20;

  /// budget_bytes = 0 disables the cache (every lookup misses, nothing is stored).
  explicit PromptCache(int64_t budget_bytes = kDefaultBudgetBytes);

  PromptCache(const PromptCache&) = delete;
  PromptCache& operator=(const PromptCache&) = delete;

  /// The cached embeddings (the same tensors that were stored: treat them as read-only) and
  /// marks the entry most recently used; nullopt on a miss. Counts a hit or a miss.
  std::optional<PromptEmbeds> get(const PromptKey& key);
  /// Stores `value` as most recently used (replacing an entry with the same key), then
  /// evicts least-recently-used entries until the total fits the budget. A value larger
  /// than the whole budget is not stored. Returns whether it was stored.
  bool put(const PromptKey& key, const PromptEmbeds& value);

  /// Changes the budget (evicting as needed); 0 disables and empties the cache.
  void set_budget_bytes(int64_t budget_bytes);
  void clear();

  struct Stats {
    int64_t hits = 0;
    int64_t misses = 0;
    int64_t evictions = 0;  ///< entries dropped to fit the budget
    int64_t entries = 0;
    int64_t bytes = 0;  ///< bytes held now
    int64_t budget_bytes = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    std::string id;
    PromptEmbeds value;
    int64_t bytes;
  };
  static std::string id_of(const PromptKey& key);
  void evict_to_fit_locked();

  mutable std::mutex mu_;
  int64_t budget_;
  int64_t bytes_ = 0;
  int64_t hits_ = 0, misses_ = 0, evictions_ = 0;
  std::list<Entry> lru_;  ///< front = most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace onereward::pipeline
