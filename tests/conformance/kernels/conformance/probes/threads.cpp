// Threads: std::mutex under contention (with a no-mutex control proving the detector works),
// condition_variable handoff, call_once, timed waits (the prelude turns libstdc++'s steady-clock
// waits into pthread_*timed* calls that the glibc shim forwards), async/future/thread_local.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "json.h"
#include "probes.h"

namespace conformance {
namespace {

using Clock = std::chrono::steady_clock;

int64_t micros_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
}

// Starts all threads of a round together so that they really contend.
class StartLine {
 public:
  explicit StartLine(int64_t threads) : threads_(threads) {}
  void arrive_and_wait() {
    arrived_.fetch_add(1);
    while (arrived_.load() < threads_) std::this_thread::yield();
  }

 private:
  const int64_t threads_;
  std::atomic<int64_t> arrived_{0};
};

struct Contention {
  int64_t max_occupancy = 0;  // most threads ever inside the critical section at once
  int64_t overlaps = 0;       // entries that found another thread inside
  int64_t counter = 0;        // final value of the shared counter
};

// One round: `threads` threads each enter the critical section `iters` times. Inside, an atomic
// occupancy count must stay at 1 when the mutex is used; the shared counter is a relaxed
// load + (pause) + store, so that without the mutex updates are lost instead of being UB.
Contention contend(bool use_mutex, int64_t threads, int64_t iters) {
  std::mutex mutex;
  std::atomic<int64_t> occupancy{0}, max_occupancy{0}, overlaps{0}, counter{0};
  StartLine start(threads);
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      start.arrive_and_wait();
      for (int64_t i = 0; i < iters; ++i) {
        std::unique_lock<std::mutex> lock(mutex, std::defer_lock);
        if (use_mutex) lock.lock();
        const int64_t inside = occupancy.fetch_add(1) + 1;
        if (inside > 1) overlaps.fetch_add(1);
        int64_t seen = max_occupancy.load();
        while (inside > seen && !max_occupancy.compare_exchange_weak(seen, inside)) {
        }
        const int64_t value = counter.load(std::memory_order_relaxed);
        for (volatile int spin = 0; spin < 16; spin = spin + 1) {
        }
        // Now and then give the CPU away while inside: on a machine with one usable core (or a
        // busy one) the threads would otherwise run one after another and never meet here.
        if (i % 64 == 0) std::this_thread::yield();
        counter.store(value + 1, std::memory_order_relaxed);
        occupancy.fetch_sub(1);
      }
    });
  }
  for (auto& thread : pool) thread.join();
  return {max_occupancy.load(), overlaps.load(), counter.load()};
}

thread_local int64_t tls_value = 0;

}  // namespace

std::string mutex_probe(int64_t threads, int64_t iters) {
  const Contention locked = contend(true, threads, iters);
  // The control must show that the detector sees overlaps; retry a few rounds on a busy machine.
  Contention control;
  int64_t rounds = 0;
  do {
    control = contend(false, threads, iters);
  } while (++rounds < 5 && control.overlaps == 0);
  return Json()
      .integer("expected", threads * iters)
      .integer("locked_counter", locked.counter)
      .integer("locked_max_occupancy", locked.max_occupancy)
      .integer("locked_overlaps", locked.overlaps)
      .integer("control_counter", control.counter)
      .integer("control_max_occupancy", control.max_occupancy)
      .integer("control_overlaps", control.overlaps)
      .integer("control_rounds", rounds)
      .str();
}

std::string condvar_probe(int64_t items) {
  // A one-slot queue: every item is a handoff producer -> consumer and back.
  std::mutex mutex;
  std::condition_variable changed;
  bool full = false;
  int64_t slot = 0;
  int64_t received = 0, sum = 0;
  bool in_order = true;
  std::thread consumer([&] {
    for (int64_t expected = 1; expected <= items; ++expected) {
      std::unique_lock<std::mutex> lock(mutex);
      changed.wait(lock, [&] { return full; });
      in_order = in_order && slot == expected;
      sum += slot;
      ++received;
      full = false;
      lock.unlock();
      changed.notify_one();
    }
  });
  std::thread producer([&] {
    for (int64_t item = 1; item <= items; ++item) {
      std::unique_lock<std::mutex> lock(mutex);
      changed.wait(lock, [&] { return !full; });
      slot = item;
      full = true;
      lock.unlock();
      changed.notify_one();
    }
  });
  producer.join();
  consumer.join();
  return Json()
      .integer("received", received)
      .integer("sum", sum)
      .integer("expected_sum", items * (items + 1) / 2)
      .boolean("in_order", in_order)
      .str();
}

std::string call_once_probe(int64_t threads) {
  std::once_flag flag;
  std::atomic<int64_t> calls{0}, saw_value{0};
  int64_t value = 0;  // published by call_once, read without a lock
  StartLine start(threads);
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      start.arrive_and_wait();
      std::call_once(flag, [&] {
        calls.fetch_add(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        value = 42;
      });
      saw_value += value == 42;
    });
  }
  for (auto& thread : pool) thread.join();
  return Json().integer("calls", calls).integer("saw_value", saw_value).integer("threads", threads).str();
}

std::string timed_wait_probe(int64_t ms) {
  const auto timeout = std::chrono::milliseconds(ms);
  Json out;
  out.integer("requested_us", ms * 1000);
  {  // condition_variable::wait_for with a predicate nobody satisfies: a full timeout
    std::mutex mutex;
    std::condition_variable cv;
    std::unique_lock<std::mutex> lock(mutex);
    const auto start = Clock::now();
    const bool result = cv.wait_for(lock, timeout, [] { return false; });
    out.boolean("cv_wait_for_result", result).integer("cv_wait_for_us", micros_since(start));
  }
  {  // condition_variable::wait_until(steady_clock) timing out
    std::mutex mutex;
    std::condition_variable cv;
    std::unique_lock<std::mutex> lock(mutex);
    const auto start = Clock::now();
    const bool result = cv.wait_until(lock, start + timeout, [] { return false; });
    out.boolean("cv_wait_until_result", result).integer("cv_wait_until_us", micros_since(start));
  }
  {  // wait_for satisfied by another thread well before the (long) timeout
    std::mutex mutex;
    std::condition_variable cv;
    bool ready = false;
    const auto start = Clock::now();
    std::thread notifier([&] {
      std::this_thread::sleep_for(timeout / 4);
      {
        std::lock_guard<std::mutex> guard(mutex);
        ready = true;
      }
      cv.notify_one();
    });
    bool result;
    {
      std::unique_lock<std::mutex> lock(mutex);
      result = cv.wait_for(lock, timeout * 40, [&] { return ready; });
    }
    out.boolean("cv_notified_result", result).integer("cv_notified_us", micros_since(start));
    notifier.join();
  }
  {  // timed_mutex::try_lock_for while another thread holds it, then after it is released
    std::timed_mutex mutex;
    std::atomic<bool> held{false}, release{false};
    std::thread holder([&] {
      mutex.lock();
      held = true;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      mutex.unlock();
    });
    while (!held) std::this_thread::yield();
    auto start = Clock::now();
    const bool busy = mutex.try_lock_for(timeout);
    out.boolean("timed_mutex_busy_result", busy).integer("timed_mutex_busy_us", micros_since(start));
    if (busy) mutex.unlock();
    release = true;
    start = Clock::now();
    const bool free = mutex.try_lock_for(timeout * 40);
    out.boolean("timed_mutex_free_result", free).integer("timed_mutex_free_us", micros_since(start));
    if (free) mutex.unlock();
    holder.join();
  }
  {  // shared_timed_mutex: a shared try_lock_for against an exclusive holder
    std::shared_timed_mutex mutex;
    mutex.lock();
    bool shared = false;
    int64_t shared_us = 0;
    std::thread reader([&] {
      const auto start = Clock::now();
      shared = mutex.try_lock_shared_for(timeout);
      shared_us = micros_since(start);
      if (shared) mutex.unlock_shared();
    });
    reader.join();
    mutex.unlock();
    out.boolean("shared_mutex_busy_result", shared).integer("shared_mutex_busy_us", shared_us);
    const bool later = mutex.try_lock_shared_for(timeout);
    if (later) mutex.unlock_shared();
    out.boolean("shared_mutex_free_result", later);
  }
  {
    const auto start = Clock::now();
    std::this_thread::sleep_for(timeout);
    out.integer("sleep_for_us", micros_since(start));
  }
  return out.str();
}

std::string async_probe(int64_t threads) {
  Json out;
  // An exception carried through a future from another thread.
  auto failing = std::async(std::launch::async, [] { throw std::runtime_error("from std::async"); });
  try {
    failing.get();
    out.string("future_exception", "not thrown");
  } catch (const std::runtime_error& e) {
    out.string("future_exception", e.what());
  }
  // thread_local: every thread sees its own copy.
  std::vector<std::future<int64_t>> futures;
  for (int64_t t = 0; t < threads; ++t) {
    futures.push_back(std::async(std::launch::async, [t] {
      tls_value = 1000 + t;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return tls_value;
    }));
  }
  std::vector<int64_t> values;
  for (auto& future : futures) values.push_back(future.get());
  out.integers("thread_local_values", values).integer("main_thread_local", tls_value);
  // promise/future handoff.
  std::promise<std::string> promise;
  std::future<std::string> result = promise.get_future();
  std::thread([&] { promise.set_value("promised"); }).join();
  return out.string("promise", result.get()).str();
}

}  // namespace conformance
