// A caching allocator for libtorch's large CPU tensor buffers.
//
// glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh
// mmap and returns it to the kernel on free, so each large activation of a forward pass
// costs a page fault and a page of zeroing per 4 KiB, every step. At 1024x1024 most of the
// transformer's and the VAE's activations are above that size (a [2 x 4608, 1024] fp32
// tensor is 36 MiB), while at 512x512 many are below it: element-wise ops and
// concatenations then got 5-10x slower per byte at the larger size, so whole stages lost
// efficiency as the image grew. Keeping freed large buffers for reuse, as the CUDA caching
// allocator does on the GPU, removes that cost: a denoising loop allocates the same sizes
// every step.
//
// This header stays free of libtorch so that the server can include it.
#pragma once

#include <cstdint>
#include <string>

namespace onereward::models {

struct CpuBufferCacheStats {
  bool installed = false;
  int64_t limit_bytes = 0;       ///< live + kept bytes above which freed buffers are returned
  int64_t cached_bytes = 0;      ///< free buffers kept for reuse
  int64_t in_use_bytes = 0;      ///< live buffers served by the cache (large ones only)
  int64_t hits = 0;              ///< large allocations served from kept buffers
  int64_t misses = 0;            ///< large allocations that went to the system
};

/// Buffers of at least this many bytes are cached; smaller ones go straight to libtorch's own
/// CPU allocator. This is glibc's smallest mmap threshold: its threshold only rises after
/// it frees a large mapped buffer, which with the cache in place rarely happens, so every
/// size that glibc could map must be cached here or it would be mapped on every allocation.
constexpr int64_t kCpuBufferCacheMinBytes = int64_t{128} << 10;

/// Makes the cache libtorch's CPU allocator for the rest of the process. Freed buffers are
/// kept while the bytes of live and kept buffers together stay within `limit_bytes`; beyond
/// it the least recently freed ones are returned to the system, on a free and before an
/// allocation that no kept buffer fits. So a workload whose large buffers fit in the limit
/// allocates nothing from the system once it has run once, and one that does not fit costs
/// no more than without the cache. Kept buffers stay while idle (like the CUDA caching
/// allocator's). Calling it again changes the limit. A negative `limit_bytes` takes
/// auto_cpu_buffer_cache_limit(); 0 leaves libtorch's allocator in place when the cache is not
/// installed yet, and otherwise stops keeping buffers. Sizes are rounded up to 1/8 of their power of two (at most 12.5% more address
/// space; untouched pages cost nothing). A failed allocation returns every kept buffer and
/// tries once more before it fails.
void install_cpu_buffer_cache(int64_t limit_bytes);

/// The default limit: half of the memory this process can still take, that is the smaller of
/// physical RAM and the cgroup's memory limit (v2 `memory.max` or v1
/// `memory/memory.limit_in_bytes` under `cgroup_root`), minus what the process holds now
/// (call it once the weights are loaded). 0 when nothing is left.
int64_t auto_cpu_buffer_cache_limit(const std::string& cgroup_root = "/sys/fs/cgroup");

/// Returns every kept buffer to the system (buffers in use are unaffected).
void release_cpu_buffer_cache();

CpuBufferCacheStats cpu_buffer_cache_stats();

}  // namespace onereward::models
