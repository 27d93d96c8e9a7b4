// Scheduler behaviour with an engine whose timing and failures the test controls.
#include <gtest/gtest.h>

#include <algorithm>

#include "tests/server/fake_engine.h"

using namespace onereward;
using namespace onereward::server;
using onereward::server::testing::FakeEngine;
using onereward::server::testing::RecordingSink;

namespace {

std::shared_ptr<SchedJob> make_job(const std::string& name, int steps = 3, int priority = 0, int size = 64,
                                   float true_cfg = 4.0f, int num_images = 1) {
  auto j = std::make_shared<SchedJob>();
  j->id = name;
  j->request.task = Task::kFill;
  j->request.image = image::Image(size, size, 100);
  j->request.mask = image::Image(size, size, 255);
  j->request.prompts = {name};
  j->request.steps = steps;
  j->request.true_cfg = true_cfg;
  j->request.num_images = num_images;
  j->request.seed = std::hash<std::string>{}(name);
  j->priority = priority;
  j->sink = std::make_shared<RecordingSink>();
  return j;
}

RecordingSink& sink(const std::shared_ptr<SchedJob>& j) { return static_cast<RecordingSink&>(*j->sink); }

std::vector<int> iota(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i + 1;
  return v;
}

/// Index of the first step call that includes `name` (-1: none).
int first_call_with(const std::vector<std::vector<std::string>>& calls, const std::string& name) {
  for (size_t i = 0; i < calls.size(); ++i)
    if (std::find(calls[i].begin(), calls[i].end(), name) != calls[i].end()) return static_cast<int>(i);
  return -1;
}

/// Holds the (gated) engine inside a one-step job, so what is submitted next waits.
void hold_engine(Scheduler& s, FakeEngine& engine) {
  ASSERT_EQ(s.submit(make_job("blocker", 1)), Scheduler::Admit::kOk);
  ASSERT_TRUE(engine.wait_entered(1));
}

}  // namespace

TEST(Scheduler, BatchesCompatibleJobsIntoOneStep) {
  FakeEngine engine;
  engine.close_gate();
  Scheduler s(engine, {64, 16, 16});
  ASSERT_NO_FATAL_FAILURE(hold_engine(s, engine));
  std::vector<std::shared_ptr<SchedJob>> jobs;
  for (int i = 0; i < 3; ++i) {
    jobs.push_back(make_job("j" + std::to_string(i), 4));
    ASSERT_EQ(s.submit(jobs.back()), Scheduler::Admit::kOk);
  }
  engine.open_gate();
  for (auto& j : jobs) {
    ASSERT_TRUE(sink(j).wait());
    EXPECT_EQ(sink(j).code, StatusCode::kOk) << sink(j).message;
    EXPECT_EQ(sink(j).steps_seen(), iota(4));
  }
  // After each job joined (one admission per iteration), all three share every step.
  auto calls = engine.calls();
  int shared = 0;
  for (auto& c : calls) shared += c.size() == 3;
  EXPECT_GE(shared, 2);
  EXPECT_EQ(s.stats().max_rows_seen, 6);
}

TEST(Scheduler, JobsJoinAndLeaveAtStepBoundaries) {
  FakeEngine engine;
  engine.close_gate();
  Scheduler s(engine, {64, 16, 16});
  auto a = make_job("a", 6);
  ASSERT_EQ(s.submit(a), Scheduler::Admit::kOk);
  engine.release(2);
  ASSERT_TRUE(engine.wait_entered(3));  // a's 3rd step is waiting at the gate
  auto b = make_job("b", 2);
  ASSERT_EQ(s.submit(b), Scheduler::Admit::kOk);
  engine.open_gate();
  ASSERT_TRUE(sink(a).wait());
  ASSERT_TRUE(sink(b).wait());
  EXPECT_EQ(sink(a).steps_seen(), iota(6));
  EXPECT_EQ(sink(b).steps_seen(), iota(2));
  auto calls = engine.calls();
  // b joins at the step after the one that was running, and leaves after its 2 steps.
  const int jb = first_call_with(calls, "b");
  ASSERT_EQ(jb, 3);
  EXPECT_EQ(calls[3], (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(calls[4], (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(calls[5], (std::vector<std::string>{"a"}));
  EXPECT_EQ(calls.size(), 6u);
}

TEST(Scheduler, CancellingOneJobOfABatchLeavesTheOthers) {
  FakeEngine engine;
  engine.close_gate();
  Scheduler s(engine, {64, 16, 16});
  auto a = make_job("a", 5), b = make_job("b", 5), c = make_job("c", 5);
  for (auto& j : {a, b, c}) ASSERT_EQ(s.submit(j), Scheduler::Admit::kOk);
  engine.release(3);
  ASSERT_TRUE(engine.wait_entered(4));
  ASSERT_EQ(s.cancel("b"), std::optional<std::string>("running"));
  engine.open_gate();
  for (auto& j : {a, b, c}) ASSERT_TRUE(sink(j).wait());
  EXPECT_EQ(sink(b).code, StatusCode::kCancelled);
  EXPECT_EQ(sink(a).code, StatusCode::kOk);
  EXPECT_EQ(sink(c).code, StatusCode::kOk);
  EXPECT_EQ(sink(a).steps_seen(), iota(5));
  EXPECT_EQ(sink(c).steps_seen(), iota(5));
  // No VAE decode is spent on the cancelled job, and it never steps again.
  auto fin = engine.finished();
  EXPECT_EQ(std::count(fin.begin(), fin.end(), "b"), 0);
  auto calls = engine.calls();
  const auto b_steps = std::count_if(calls.begin(), calls.end(), [](auto& c) {
    return std::find(c.begin(), c.end(), "b") != c.end();
  });
  EXPECT_LE(b_steps, 4);
  EXPECT_FALSE(s.cancel("b").has_value());  // finished ids are unknown
}

TEST(Scheduler, HigherPriorityRunsFirst) {
  FakeEngine engine;
  engine.close_gate();
  Scheduler s(engine, {64, 2, 100});  // one true-CFG job at a time
  auto running = make_job("running", 1);
  ASSERT_EQ(s.submit(running), Scheduler::Admit::kOk);
  ASSERT_TRUE(engine.wait_entered(1));
  auto low = make_job("low", 1, 0), mid = make_job("mid", 1, 5), high = make_job("high", 1, 9);
  for (auto& j : {low, mid, high}) ASSERT_EQ(s.submit(j), Scheduler::Admit::kOk);
  engine.open_gate();
  for (auto& j : {low, mid, high}) ASSERT_TRUE(sink(j).wait());
  EXPECT_EQ(engine.prepared(), (std::vector<std::string>{"running", "high", "mid", "low"}));
}

TEST(Scheduler, LowPriorityIsNotStarved) {
  FakeEngine engine;
  engine.close_gate();
  const int limit = 4;
  Scheduler s(engine, {64, 2, limit});
  auto first = make_job("first", 1, 9);
  ASSERT_EQ(s.submit(first), Scheduler::Admit::kOk);
  ASSERT_TRUE(engine.wait_entered(1));
  auto low = make_job("low", 1, 0);
  ASSERT_EQ(s.submit(low), Scheduler::Admit::kOk);
  // A stream of newer high-priority jobs, always one more waiting than can run.
  std::vector<std::shared_ptr<SchedJob>> highs;
  for (int i = 0; i < 12; ++i) {
    highs.push_back(make_job("high" + std::to_string(i), 1, 9));
    ASSERT_EQ(s.submit(highs.back()), Scheduler::Admit::kOk);
  }
  engine.open_gate();
  ASSERT_TRUE(sink(low).wait());
  for (auto& h : highs) ASSERT_TRUE(sink(h).wait());
  auto order = engine.prepared();
  const auto pos = std::find(order.begin(), order.end(), "low") - order.begin();
  // Each job takes about two iterations (admit + step, then finish): the low-priority job is
  // overtaken only until it has waited `limit` iterations, not by all twelve.
  EXPECT_LE(pos, 1 + limit);
  EXPECT_GE(pos, 2);  // but priority did hold for a while
}

TEST(Scheduler, FullQueueIsRefused) {
  FakeEngine engine;
  engine.close_gate();
  Scheduler s(engine, {2, 2, 16});
  auto a = make_job("a", 1);
  ASSERT_EQ(s.submit(a), Scheduler::Admit::kOk);
  ASSERT_TRUE(engine.wait_entered(1));  // a runs; the queue is empty
  auto b = make_job("b", 1), c = make_job("c", 1), d = make_job("d", 1);
  EXPECT_EQ(s.submit(b), Scheduler::Admit::kOk);
  EXPECT_EQ(s.submit(c), Scheduler::Admit::kOk);
  EXPECT_EQ(s.submit(d), Scheduler::Admit::kQueueFull);
  EXPECT_EQ(s.queued(), 2u);
  EXPECT_EQ(s.submit(make_job("b", 1)), Scheduler::Admit::kDuplicateId);
  engine.open_gate();
  for (auto& j : {a, b, c}) ASSERT_TRUE(sink(j).wait());
  EXPECT_EQ(sink(d).terminal_count, 0);  // never admitted: no events at all
  EXPECT_TRUE(sink(d).positions.empty());
}

TEST(Scheduler, QueuePositionsAndExpectedWait) {
  FakeEngine engine;
  engine.close_gate();
  Scheduler s(engine, {64, 2, 100});
  auto a = make_job("a", 2);
  ASSERT_EQ(s.submit(a), Scheduler::Admit::kOk);
  ASSERT_TRUE(engine.wait_entered(1));
  engine.release(1);  // one measured step: expected waits are known from here on
  ASSERT_TRUE(engine.wait_entered(2));
  auto b = make_job("b", 2), c = make_job("c", 2);
  ASSERT_EQ(s.submit(b), Scheduler::Admit::kOk);
  ASSERT_EQ(s.submit(c), Scheduler::Admit::kOk);
  EXPECT_EQ(sink(a).positions_seen(), std::vector<int>{0});
  EXPECT_EQ(sink(b).positions_seen(), std::vector<int>{0});
  EXPECT_EQ(sink(c).positions_seen(), std::vector<int>{1});
  EXPECT_GE(sink(c).waits[0], sink(b).waits[0]);
  engine.open_gate();
  for (auto& j : {b, c}) ASSERT_TRUE(sink(j).wait());
  // c moved up when b started.
  EXPECT_EQ(sink(c).positions_seen(), (std::vector<int>{1, 0}));
}

TEST(Scheduler, FailingBatchedStepIsRetriedInSmallerGroups) {
  FakeEngine engine;
  engine.fail_above_rows = 4;  // "out of memory" above 4 rows
  engine.close_gate();
  Scheduler s(engine, {64, 16, 16});
  ASSERT_NO_FATAL_FAILURE(hold_engine(s, engine));
  std::vector<std::shared_ptr<SchedJob>> jobs;
  for (int i = 0; i < 4; ++i) jobs.push_back(make_job("j" + std::to_string(i), 3));
  jobs.push_back(make_job("poison", 3));
  for (auto& j : jobs) ASSERT_EQ(s.submit(j), Scheduler::Admit::kOk);
  engine.open_gate();
  for (auto& j : jobs) ASSERT_TRUE(sink(j).wait());
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(sink(jobs[i]).code, StatusCode::kOk) << sink(jobs[i]).message;
    EXPECT_EQ(sink(jobs[i]).steps_seen(), iota(3));
  }
  EXPECT_EQ(sink(jobs[4]).code, StatusCode::kInternal);
  EXPECT_NE(sink(jobs[4]).message.find("failed on purpose"), std::string::npos);
  EXPECT_GT(s.stats().step_retries, 0);
}

TEST(Scheduler, PrepareFailuresEndTheJobWithTheirCode) {
  FakeEngine engine;
  Scheduler s(engine, {64, 16, 16});
  auto a = make_job("fail-prepare", 2), b = make_job("bad-input", 2), c = make_job("ok", 2);
  for (auto& j : {a, b, c}) ASSERT_EQ(s.submit(j), Scheduler::Admit::kOk);
  for (auto& j : {a, b, c}) ASSERT_TRUE(sink(j).wait());
  EXPECT_EQ(sink(a).code, StatusCode::kInternal);
  EXPECT_EQ(sink(b).code, StatusCode::kInvalidArgument);
  EXPECT_EQ(sink(c).code, StatusCode::kOk);
}

TEST(Scheduler, DeadlinesEndJobs) {
  FakeEngine engine;
  engine.step_delay_ms = 20;
  Scheduler s(engine, {64, 16, 16});
  auto a = make_job("a", 1000);
  a->deadline = Clock::now() + std::chrono::milliseconds(150);
  ASSERT_EQ(s.submit(a), Scheduler::Admit::kOk);
  ASSERT_TRUE(sink(a).wait());
  EXPECT_EQ(sink(a).code, StatusCode::kDeadlineExceeded);
  EXPECT_LT(sink(a).steps_seen().size(), 1000u);
}

TEST(Scheduler, CancelQueuedJobAndUnknownIds) {
  FakeEngine engine;
  engine.close_gate();
  Scheduler s(engine, {64, 2, 16});
  auto a = make_job("a", 1), b = make_job("b", 1);
  ASSERT_EQ(s.submit(a), Scheduler::Admit::kOk);
  ASSERT_TRUE(engine.wait_entered(1));
  ASSERT_EQ(s.submit(b), Scheduler::Admit::kOk);
  EXPECT_EQ(s.cancel("b"), std::optional<std::string>("queued"));
  EXPECT_FALSE(s.cancel("nope").has_value());
  engine.open_gate();
  ASSERT_TRUE(sink(b).wait());
  EXPECT_EQ(sink(b).code, StatusCode::kCancelled);
  EXPECT_TRUE(sink(b).steps_seen().empty());
  auto prepared = engine.prepared();
  EXPECT_EQ(std::count(prepared.begin(), prepared.end(), "b"), 0);
}

TEST(Scheduler, DrainRefusesNewJobsAndFinishesAccepted) {
  FakeEngine engine;
  engine.step_delay_ms = 5;
  Scheduler s(engine, {64, 2, 16});
  auto a = make_job("a", 5), b = make_job("b", 5);
  ASSERT_EQ(s.submit(a), Scheduler::Admit::kOk);
  ASSERT_EQ(s.submit(b), Scheduler::Admit::kOk);
  s.begin_drain();
  EXPECT_EQ(s.submit(make_job("c", 1)), Scheduler::Admit::kDraining);
  EXPECT_TRUE(s.wait_idle(Clock::now() + std::chrono::seconds(20)));
  EXPECT_EQ(sink(a).code, StatusCode::kOk);
  EXPECT_EQ(sink(b).code, StatusCode::kOk);
}

TEST(Scheduler, CancelAllEndsEveryJobWithTheGivenCode) {
  FakeEngine engine;
  engine.close_gate();
  Scheduler s(engine, {64, 2, 16});
  auto a = make_job("a", 5), b = make_job("b", 5);
  ASSERT_EQ(s.submit(a), Scheduler::Admit::kOk);
  ASSERT_EQ(s.submit(b), Scheduler::Admit::kOk);
  ASSERT_TRUE(engine.wait_entered(1));
  s.begin_drain();
  s.cancel_all(StatusCode::kUnavailable, "shutting down");
  engine.open_gate();
  EXPECT_TRUE(s.wait_idle(Clock::now() + std::chrono::seconds(20)));
  EXPECT_EQ(sink(a).code, StatusCode::kUnavailable);
  EXPECT_EQ(sink(b).code, StatusCode::kUnavailable);
}

TEST(Scheduler, DifferentGroupsShareTheEngineFairly) {
  FakeEngine engine;
  engine.close_gate();
  Scheduler s(engine, {64, 16, 16});
  ASSERT_NO_FATAL_FAILURE(hold_engine(s, engine));
  auto small = make_job("small", 6, 0, 64), big = make_job("big", 6, 0, 128);
  ASSERT_EQ(s.submit(small), Scheduler::Admit::kOk);
  ASSERT_EQ(s.submit(big), Scheduler::Admit::kOk);
  engine.open_gate();
  ASSERT_TRUE(sink(small).wait());
  ASSERT_TRUE(sink(big).wait());
  auto calls = engine.calls();
  for (auto& c : calls) EXPECT_EQ(c.size(), 1u);  // never mixed in one call
  // They alternate: neither runs all its steps before the other starts.
  const int fs = first_call_with(calls, "small"), fb = first_call_with(calls, "big");
  int small_before_big = 0;
  for (int i = fs; i < fb; ++i) small_before_big += calls[i][0] == "small";
  EXPECT_LE(small_before_big, 2);
  EXPECT_EQ(sink(small).steps_seen(), iota(6));
  EXPECT_EQ(sink(big).steps_seen(), iota(6));
}

TEST(Scheduler, PreviewsEveryNSteps) {
  FakeEngine engine;
  Scheduler s(engine, {64, 16, 16});
  auto a = make_job("a", 7);
  a->preview_every = 3;
  ASSERT_EQ(s.submit(a), Scheduler::Admit::kOk);
  ASSERT_TRUE(sink(a).wait());
  EXPECT_EQ(sink(a).previews, 2);  // steps 3 and 6 (not the last: the result follows)
}
