// The caching CPU allocator: reuse of freed buffers, the bypass for small ones, the limit on
// live + kept bytes with least-recently-freed eviction, the raw interface, release, and many
// threads allocating at once. The cache is process-wide, so every test starts from an empty
// cache with its own limit and reads stats relative to where it started (ctest runs each
// test in its own process; run as one binary, the install test comes first in file order).
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "engine/models/cpu_buffer_cache.h"

using onereward::models::auto_cpu_buffer_cache_limit;
using onereward::models::cpu_buffer_cache_stats;
using onereward::models::install_cpu_buffer_cache;
using onereward::models::kCpuBufferCacheMinBytes;
using onereward::models::release_cpu_buffer_cache;

namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

// A float tensor of `bytes` bytes (a multiple of 4).
torch::Tensor buffer(int64_t bytes) { return torch::empty({bytes / 4}, torch::kFloat32); }

class CpuBufferCache : public ::testing::Test {
 protected:
  void start(int64_t limit) {
    install_cpu_buffer_cache(limit);
    release_cpu_buffer_cache();
    const auto s = cpu_buffer_cache_stats();
    ASSERT_TRUE(s.installed);
    ASSERT_EQ(s.cached_bytes, 0);
    base_ = s;
  }
  int64_t hits() const { return cpu_buffer_cache_stats().hits - base_.hits; }
  int64_t misses() const { return cpu_buffer_cache_stats().misses - base_.misses; }
  int64_t cached() const { return cpu_buffer_cache_stats().cached_bytes; }
  int64_t in_use() const { return cpu_buffer_cache_stats().in_use_bytes - base_.in_use_bytes; }

  onereward::models::CpuBufferCacheStats base_;
};

TEST(CpuBufferCacheInstall, ZeroLimitLeavesLibtorchsAllocator) {
  c10::Allocator* before = c10::GetCPUAllocator();
  install_cpu_buffer_cache(0);
  EXPECT_FALSE(cpu_buffer_cache_stats().installed);
  EXPECT_EQ(c10::GetCPUAllocator(), before);
  install_cpu_buffer_cache(64 * kMiB);
  EXPECT_TRUE(cpu_buffer_cache_stats().installed);
  EXPECT_NE(c10::GetCPUAllocator(), before);
  EXPECT_EQ(cpu_buffer_cache_stats().limit_bytes, 64 * kMiB);
}

TEST(CpuBufferCacheAutoLimit, HalfOfWhatIsLeftUnderRamAndTheCgroupLimit) {
  namespace fs = std::filesystem;
  const int64_t ram = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  const fs::path root = fs::temp_directory_path() / ("cgroup-" + std::to_string(getpid()));
  fs::create_directories(root / "memory");
  auto write = [](const fs::path& p, const std::string& text) { std::ofstream(p) << text << "\n"; };

  // No limit files: RAM bounds it.
  const int64_t unlimited = auto_cpu_buffer_cache_limit(root.string());
  EXPECT_GT(unlimited, 0);
  EXPECT_LE(unlimited, ram / 2);
  // cgroup v2 "max" is no limit.
  write(root / "memory.max", "max");
  EXPECT_NEAR(auto_cpu_buffer_cache_limit(root.string()), unlimited, 64 * kMiB);
  // cgroup v2 limit of 1 GiB: half of it less half of what the process holds.
  write(root / "memory.max", std::to_string(1024 * kMiB));
  const int64_t v2 = auto_cpu_buffer_cache_limit(root.string());
  EXPECT_GT(v2, 0);
  EXPECT_LT(v2, 512 * kMiB);
  // cgroup v1 limit (the smaller one wins).
  fs::remove(root / "memory.max");
  write(root / "memory" / "memory.limit_in_bytes", std::to_string(512 * kMiB));
  const int64_t v1 = auto_cpu_buffer_cache_limit(root.string());
  EXPECT_LT(v1, 256 * kMiB);
  EXPECT_NEAR(v2 - v1, 256 * kMiB, 64 * kMiB);
  // A limit below what the process already holds leaves nothing: 0 (no cache).
  write(root / "memory" / "memory.limit_in_bytes", std::to_string(kMiB));
  EXPECT_EQ(auto_cpu_buffer_cache_limit(root.string()), 0);
  fs::remove_all(root);
}

TEST_F(CpuBufferCache, FreedBufferIsReusedForTheSameRoundedSize) {
  start(64 * kMiB);
  void* first = nullptr;
  {
    torch::Tensor t = buffer(5 * kMiB - 4096);
    first = t.data_ptr();
    EXPECT_EQ(misses(), 1);
    EXPECT_EQ(in_use(), 5 * kMiB);  // rounded up to 1/8 of 4 MiB
  }
  EXPECT_EQ(in_use(), 0);
  EXPECT_EQ(cached(), 5 * kMiB);
  // A few bytes more rounds to the same size: the same buffer comes back.
  torch::Tensor again = buffer(5 * kMiB - 64);
  EXPECT_EQ(again.data_ptr(), first);
  EXPECT_EQ(hits(), 1);
  EXPECT_EQ(misses(), 1);
  EXPECT_EQ(cached(), 0);
  // A size in another class does not take it.
  torch::Tensor other = buffer(8 * kMiB);
  EXPECT_NE(other.data_ptr(), first);
  EXPECT_EQ(misses(), 2);
}

TEST_F(CpuBufferCache, SmallBuffersBypassTheCache) {
  start(64 * kMiB);
  {
    torch::Tensor small = buffer(kCpuBufferCacheMinBytes - 64);
    small.fill_(1.0f);
    EXPECT_EQ(in_use(), 0);
  }
  EXPECT_EQ(hits() + misses(), 0);
  EXPECT_EQ(cached(), 0);
  {
    torch::Tensor at_threshold = buffer(kCpuBufferCacheMinBytes);
    EXPECT_EQ(misses(), 1);
  }
  EXPECT_EQ(cached(), kCpuBufferCacheMinBytes);
}

TEST_F(CpuBufferCache, LiveAndKeptStayWithinTheLimitLeastRecentlyFreedFirst) {
  start(16 * kMiB);
  void* b_ptr = nullptr;
  {
    torch::Tensor a = buffer(4 * kMiB), b = buffer(6 * kMiB);
    b_ptr = b.data_ptr();
    a.reset();  // freed first: least recently freed
    b.reset();
  }
  EXPECT_EQ(cached(), 10 * kMiB);
  // 10 MiB more needs room: 10 + 10 > 16, so A (freed first) goes and B stays.
  torch::Tensor c = buffer(10 * kMiB);
  EXPECT_EQ(cached(), 6 * kMiB);
  EXPECT_LE(in_use() + cached(), 16 * kMiB);
  torch::Tensor b2 = buffer(6 * kMiB);
  EXPECT_EQ(b2.data_ptr(), b_ptr);
  EXPECT_EQ(cached(), 0);

  // Live buffers beyond the limit are still served; when freed, only what fits is kept.
  c.reset();
  b2.reset();
  std::vector<torch::Tensor> many;
  for (int i = 0; i < 3; ++i) many.push_back(buffer(8 * kMiB));
  EXPECT_EQ(in_use(), 24 * kMiB);
  EXPECT_EQ(cached(), 0);
  many.clear();
  EXPECT_EQ(in_use(), 0);
  EXPECT_EQ(cached(), 16 * kMiB);
}

TEST_F(CpuBufferCache, LoweringTheLimitOrReleasingReturnsKeptBuffers) {
  start(64 * kMiB);
  { std::vector<torch::Tensor> v = {buffer(8 * kMiB), buffer(8 * kMiB), buffer(8 * kMiB)}; }
  EXPECT_EQ(cached(), 24 * kMiB);
  install_cpu_buffer_cache(10 * kMiB);
  EXPECT_EQ(cached(), 8 * kMiB);
  release_cpu_buffer_cache();
  EXPECT_EQ(cached(), 0);
  // A limit of 0 once installed: nothing is kept any more, allocation still works.
  install_cpu_buffer_cache(0);
  { torch::Tensor t = buffer(8 * kMiB); }
  EXPECT_EQ(cached(), 0);
  install_cpu_buffer_cache(64 * kMiB);
}

TEST_F(CpuBufferCache, RawInterfaceServesLargeAndSmallBuffers) {
  start(64 * kMiB);
  c10::Allocator* alloc = c10::GetCPUAllocator();
  ASSERT_NE(alloc->raw_deleter(), nullptr);
  void* big = alloc->raw_allocate(8 * kMiB);
  void* small = alloc->raw_allocate(1024);
  std::memset(big, 1, 8 * kMiB);
  std::memset(small, 2, 1024);
  EXPECT_EQ(in_use(), 8 * kMiB);
  alloc->raw_deallocate(small);
  alloc->raw_deallocate(big);
  EXPECT_EQ(in_use(), 0);
  EXPECT_EQ(cached(), 8 * kMiB);
}

TEST_F(CpuBufferCache, FailedAllocationReturnsKeptBuffersAndRetries) {
  start(4096 * kMiB);
  { torch::Tensor kept = buffer(384 * kMiB); }  // never touched: address space only
  ASSERT_EQ(cached(), 384 * kMiB);
  // Cap the address space at what the process maps now (kept buffer included) + 256 MiB:
  // 448 MiB only fits once the kept 384 MiB are unmapped (192 MiB of slack for whatever
  // else maps meanwhile).
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0;
  ASSERT_TRUE(statm >> pages);
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_AS, &old), 0);
  rlimit capped = old;
  capped.rlim_cur = static_cast<rlim_t>(pages * sysconf(_SC_PAGESIZE) + 256 * kMiB);
  ASSERT_EQ(setrlimit(RLIMIT_AS, &capped), 0);
  torch::Tensor got;
  std::string first_error, second_error;
  try {
    got = buffer(448 * kMiB);
  } catch (const c10::Error& e) {
    first_error = e.what();
  }
  // Beyond any room, the error says what was asked for.
  try {
    torch::Tensor huge = buffer(4096 * kMiB);
  } catch (const c10::Error& e) {
    second_error = e.what();
  }
  got.reset();
  ASSERT_EQ(setrlimit(RLIMIT_AS, &old), 0);
  EXPECT_EQ(first_error, "");
  EXPECT_EQ(misses(), 2);  // the kept buffer and the 448 MiB; the failed one is no miss
  EXPECT_EQ(cached(), 448 * kMiB);
  EXPECT_NE(second_error.find("not enough memory for 4294967296 bytes"), std::string::npos) << second_error;
}

TEST_F(CpuBufferCache, ConcurrentAllocationsNeverShareMemory) {
  start(32 * kMiB);  // small enough that eviction runs while the threads work
  constexpr int kThreads = 4, kRounds = 60;
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &bad] {
      c10::InferenceMode guard;
      const int64_t sizes[] = {kCpuBufferCacheMinBytes, 3 * kMiB / 2, 4 * kMiB, 5 * kMiB};
      for (int r = 0; r < kRounds; ++r) {
        std::vector<torch::Tensor> live;
        for (int i = 0; i < 3; ++i) {
          live.push_back(torch::full({sizes[(t + r + i) % 4] / 4}, static_cast<float>(t * 1000 + r * 10 + i)));
        }
        for (int i = 0; i < 3; ++i) {
          const float want = static_cast<float>(t * 1000 + r * 10 + i);
          if (!live[i].eq(want).all().item<bool>()) bad.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(in_use(), 0);
  EXPECT_LE(cached(), 32 * kMiB);
  EXPECT_GT(hits(), 0);
}

TEST_F(CpuBufferCache, OpsComputeTheSameWithTheCache) {
  start(256 * kMiB);
  torch::manual_seed(3);
  const torch::Tensor a = torch::randn({512, 1024}), b = torch::randn({1024, 768});
  const torch::Tensor want = torch::mm(a.to(torch::kFloat64), b.to(torch::kFloat64));
  for (int i = 0; i < 3; ++i) {  // later rounds run on reused buffers
    torch::Tensor got = torch::cat({torch::mm(a, b), torch::gelu(a)}, 1).narrow(1, 0, 768);
    EXPECT_TRUE(torch::allclose(got.to(torch::kFloat64), want, 1e-4, 1e-3));
  }
  EXPECT_GT(hits(), 0);
}

}  // namespace
