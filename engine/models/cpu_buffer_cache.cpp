#include "engine/models/cpu_buffer_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace onereward::models {
namespace {

constexpr size_t kAlignment = 64;

// Rounds n (>= kCpuBufferCacheMinBytes) up to a multiple of 1/8 of its power of two, so
// that a few sizes differing by a handful of bytes share one buffer.
size_t round_size(size_t n) {
  size_t p = 1;
  while (p * 2 <= n) p *= 2;
  const size_t granule = p / 8;
  return (n + granule - 1) / granule * granule;
}

class CpuBufferCache final : public c10::Allocator {
 public:
  explicit CpuBufferCache(c10::Allocator* fallback) : fallback_(fallback) {}

  // libtorch 1.x declares allocate() const, 2.3+ non-const: defining both overrides whichever
  // the base declares (the other is a plain overload).
  c10::DataPtr allocate(size_t n) const { return const_cast<CpuBufferCache*>(this)->allocate_impl(n); }
  c10::DataPtr allocate(size_t n) { return allocate_impl(n); }
  // Pure virtual in libtorch 2.3+ (no `override`: absent before).
  void copy_data(void* dest, const void* src, size_t count) const { std::memcpy(dest, src, count); }

  c10::DeleterFnPtr raw_deleter() const override { return &CpuBufferCache::delete_buffer; }

  void set_limit(int64_t limit) {
    std::lock_guard<std::mutex> lock(mu_);
    limit_ = limit > 0 ? static_cast<size_t>(limit) : 0;
    trim_locked(0);
  }

  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    evict_locked(0);
  }

  CpuBufferCacheStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    CpuBufferCacheStats s;
    s.installed = true;
    s.limit_bytes = static_cast<int64_t>(limit_);
    s.cached_bytes = static_cast<int64_t>(cached_);
    s.in_use_bytes = static_cast<int64_t>(in_use_);
    s.hits = hits_;
    s.misses = misses_;
    return s;
  }

 private:
  struct FreeBuffer {
    void* ptr;
    size_t size;
  };
  using Lru = std::list<FreeBuffer>;  // front: most recently freed

  c10::DataPtr allocate_impl(size_t n) {
    if (n < static_cast<size_t>(kCpuBufferCacheMinBytes)) {
      return fallback_->allocate(n);
    }
    const size_t size = round_size(n);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = by_size_.find(size);
      if (it != by_size_.end() && !it->second.empty()) {
        const Lru::iterator buf = it->second.back();
        it->second.pop_back();
        void* p = buf->ptr;
        lru_.erase(buf);
        cached_ -= size;
        ++hits_;
        return hand_out_locked(p, size);
      }
      // A miss: make room under the limit for the new buffer by returning the least recently
      // freed ones (buffers of shapes no longer in use go first).
      trim_locked(size);
    }
    void* p = system_alloc(size);
    if (p == nullptr) {
      release();
      p = system_alloc(size);
    }
    TORCH_CHECK(p != nullptr, "CPU buffer cache: not enough memory for ", n, " bytes");
    std::lock_guard<std::mutex> lock(mu_);
    ++misses_;
    return hand_out_locked(p, size);
  }

  c10::DataPtr hand_out_locked(void* p, size_t size) {
    in_use_ += size;
    live_.emplace(p, size);
    return {p, p, &CpuBufferCache::delete_buffer, c10::Device(c10::DeviceType::CPU)};
  }

  static void* system_alloc(size_t size) {
    void* p = nullptr;
    return posix_memalign(&p, kAlignment, size) == 0 ? p : nullptr;
  }

  static void delete_buffer(void* p);

  void free_buffer(void* p) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = live_.find(p);
      if (it != live_.end()) {
        const size_t size = it->second;
        live_.erase(it);
        in_use_ -= size;
        lru_.push_front({p, size});
        by_size_[size].push_back(lru_.begin());
        cached_ += size;
        trim_locked(0);
        return;
      }
    }
    // A small buffer handed out by the fallback through raw_allocate().
    // (libtorch's default CPU allocator has a raw deleter; its buffers come from malloc.)
    const c10::DeleterFnPtr fallback_delete = fallback_->raw_deleter();
    if (fallback_delete != nullptr) {
      fallback_delete(p);
    } else {
      std::free(p);
    }
  }

  // Evicts until live + kept + `incoming` bytes fit under the limit (or nothing is kept).
  void trim_locked(size_t incoming) {
    const size_t room = limit_ > in_use_ + incoming ? limit_ - in_use_ - incoming : 0;
    evict_locked(room);
  }

  // Returns least recently freed buffers to the system until at most `keep` bytes stay kept.
  // (free() of a large buffer is an munmap: cheap enough to do under the lock.)
  void evict_locked(size_t keep) {
    while (cached_ > keep && !lru_.empty()) {
      const Lru::iterator last = std::prev(lru_.end());
      auto& same = by_size_[last->size];
      for (auto it = same.begin(); it != same.end(); ++it) {
        if (*it == last) {
          same.erase(it);
          break;
        }
      }
      cached_ -= last->size;
      std::free(last->ptr);
      lru_.erase(last);
    }
  }

  c10::Allocator* fallback_;
  mutable std::mutex mu_;
  size_t limit_ = 0;  // live + kept bytes
  Lru lru_;
  std::unordered_map<size_t, std::vector<Lru::iterator>> by_size_;
  std::unordered_map<void*, size_t> live_;
  size_t cached_ = 0;
  size_t in_use_ = 0;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

std::mutex g_install_mu;
CpuBufferCache* g_cache = nullptr;  // never destroyed: tensors may outlive main()

void CpuBufferCache::delete_buffer(void* p) {
  if (p != nullptr) g_cache->free_buffer(p);
}

// A cgroup memory limit file's value in bytes; 0 when absent or unlimited ("max", or v1's
// page-counter maximum).
int64_t read_cgroup_limit(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return 0;
  try {
    const long long v = std::stoll(text);
    return v > 0 && v < (int64_t{1} << 60) ? v : 0;
  } catch (...) {
    return 0;
  }
}

int64_t resident_bytes() {
  std::ifstream in("/proc/self/statm");
  int64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return 0;
  return resident * sysconf(_SC_PAGESIZE);
}

}  // namespace

int64_t auto_cpu_buffer_cache_limit(const std::string& cgroup_root) {
  int64_t available = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  for (const char* file : {"/memory.max", "/memory/memory.limit_in_bytes"}) {
    const int64_t limit = read_cgroup_limit(cgroup_root + file);
    if (limit > 0) available = std::min(available, limit);
  }
  return std::max<int64_t>(0, (available - resident_bytes()) / 2);
}

void install_cpu_buffer_cache(int64_t limit_bytes) {
  if (limit_bytes < 0) limit_bytes = auto_cpu_buffer_cache_limit();
  std::lock_guard<std::mutex> lock(g_install_mu);
  if (g_cache == nullptr) {
    if (limit_bytes == 0) return;
    g_cache = new CpuBufferCache(c10::GetCPUAllocator());
    g_cache->set_limit(limit_bytes);
    // Priority above the default allocator's registration, so a later default
    // registration cannot take the slot back.
    c10::SetCPUAllocator(g_cache, /*priority=*/1);
    return;
  }
  g_cache->set_limit(limit_bytes);
}

void release_cpu_buffer_cache() {
  std::lock_guard<std::mutex> lock(g_install_mu);
  if (g_cache != nullptr) g_cache->release();
}

CpuBufferCacheStats cpu_buffer_cache_stats() {
  std::lock_guard<std::mutex> lock(g_install_mu);
  return g_cache != nullptr ? g_cache->stats() : CpuBufferCacheStats{};
}

}  // namespace onereward::models
