#include "engine/pipeline/prompt_cache.h"

#include "engine/util/status.h"

namespace onereward::pipeline {

namespace {
int64_t tensor_bytes(const torch::Tensor& t) {
  return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0;
}
}  // namespace

int64_t PromptEmbeds::bytes() const {
  return tensor_bytes(prompt_embeds) + tensor_bytes(pooled_prompt_embeds) + tensor_bytes(text_ids);
}

PromptCache::PromptCache(int64_t budget_bytes) : budget_(budget_bytes) {
  check_arg(budget_bytes >= 0, "prompt cache budget must be >= 0 bytes");
}

std::string PromptCache::id_of(const PromptKey& key) {
  // Length-prefixed so that no two different keys serialise alike.
  std::string id = std::to_string(key.max_sequence_length);
  id += ':';
  id += std::to_string(key.prompt.size());
  id += ':';
  id += key.prompt;
  id += key.prompt_2;
  return id;
}

std::optional<PromptEmbeds> PromptCache::get(const PromptKey& key) {
  const std::string id = id_of(key);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);  // iterators stay valid
  return it->second->value;
}

bool PromptCache::put(const PromptKey& key, const PromptEmbeds& value) {
  std::string id = id_of(key);
  const int64_t size = value.bytes();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(id);
  if (it != index_.end()) {
    bytes_ -= it->second->bytes;
    lru_.erase(it->second);
    index_.erase(it);
  }
  if (size > budget_ || budget_ == 0) return false;
  lru_.push_front(Entry{id, value, size});
  index_.emplace(std::move(id), lru_.begin());
  bytes_ += size;
  evict_to_fit_locked();
  return true;
}

void PromptCache::evict_to_fit_locked() {
  while (bytes_ > budget_ && !lru_.empty()) {
    Entry& last = lru_.back();
    bytes_ -= last.bytes;
    index_.erase(last.id);
    lru_.pop_back();
    ++evictions_;
  }
}

void PromptCache::set_budget_bytes(int64_t budget_bytes) {
  check_arg(budget_bytes >= 0, "prompt cache budget must be >= 0 bytes");
  std::lock_guard<std::mutex> lock(mu_);
  budget_ = budget_bytes;
  evict_to_fit_locked();
}

void PromptCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  lru_.clear();
  index_.clear();
  bytes_ = 0;
}

PromptCache::Stats PromptCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s;
  s.hits = hits_;
  s.misses = misses_;
  s.evictions = evictions_;
  s.entries = static_cast<int64_t>(lru_.size());
  s.bytes = bytes_;
  s.budget_bytes = budget_;
  return s;
}

}  // namespace onereward::pipeline
