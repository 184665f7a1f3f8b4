#include "kernels/host/parallel.hpp"

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include <dlfcn.h>

namespace doppel {
namespace {
std::atomic<int> g_threads{0};
}

int host_threads() {
  const int t = g_threads.load();
  if (t > 0) return t;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

void set_host_threads(int n) { g_threads.store(n > 0 ? n : 0); }

namespace {

thread_local bool t_in_task = false;  // this thread runs a pool task (or a caller's share)

// Workers started on demand (one fewer than the most tasks asked for at once) that wait for a
// job, take its tasks from a shared counter with the caller, and wait again.
class Pool {
 public:
  // Never destroyed: workers blocked on the condition variable need no joining at exit, and a
  // static object's destructor may still call parallel_for.
  static Pool& get() {
    static Pool* pool = new Pool;
    return *pool;
  }

  void run(size_t tasks, void (*task)(void*, size_t), void* context) {
    std::unique_lock<std::mutex> job(job_mutex_, std::try_to_lock);
    if (t_in_task || !job.owns_lock()) {
      run_inline(tasks, task, context);
      return;
    }
    size_t generation;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (workers_.size() + 1 < tasks) workers_.emplace_back([this] { work(); });
      task_ = task;
      context_ = context;
      tasks_ = tasks;
      next_ = 0;
      pending_ = tasks;
      error_ = nullptr;
      generation = ++generation_;
    }
    wake_.notify_all();
    take_tasks(generation);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    std::exception_ptr error = error_;
    error_ = nullptr;
    lock.unlock();
    if (error) std::rethrow_exception(error);
  }

 private:
  static void run_inline(size_t tasks, void (*task)(void*, size_t), void* context) {
    const bool outer = t_in_task;
    t_in_task = true;
    try {
      for (size_t w = 0; w < tasks; ++w) task(context, w);
    } catch (...) {
      t_in_task = outer;
      throw;
    }
    t_in_task = outer;
  }

  // Runs tasks of job `generation` until none is left (on a worker or the caller). Tasks are
  // handed out under the mutex (a job has at most a task per thread), so a worker that wakes
  // late can never take a task of a later job.
  void take_tasks(size_t generation) {
    t_in_task = true;
    std::unique_lock<std::mutex> lock(mutex_);
    while (generation_ == generation && next_ < tasks_) {
      const size_t w = next_++;
      void (*task)(void*, size_t) = task_;
      void* context = context_;
      lock.unlock();
      std::exception_ptr error;
      try {
        task(context, w);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      if (error && !error_) error_ = error;
      if (--pending_ == 0) done_.notify_all();
    }
    t_in_task = false;
  }

  void work() {
    size_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
      }
      take_tasks(seen);
    }
  }

  std::mutex job_mutex_;  // held by the caller of the running job
  std::mutex mutex_;      // guards the job's fields below and the worker list
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  void (*task_)(void*, size_t) = nullptr;
  void* context_ = nullptr;
  size_t tasks_ = 0, next_ = 0, pending_ = 0, generation_ = 0;
  std::exception_ptr error_;
};

}  // namespace

namespace detail {
void run_tasks(size_t tasks, void (*task)(void*, size_t), void* context) { Pool::get().run(tasks, task, context); }
}  // namespace detail

namespace {
// OpenBLAS's thread setting, looked up once among the loaded libraries (null without it).
struct BlasThreadApi {
  void (*set)(int) = nullptr;
  int (*get)() = nullptr;
  BlasThreadApi() {
    set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    if (!set || !get) set = nullptr, get = nullptr;
  }
};
const BlasThreadApi& blas_api() {
  static const BlasThreadApi api;
  return api;
}
std::mutex g_blas_mutex;
int g_serial_guards = 0;
int g_saved_blas_threads = 0;
}  // namespace

SerialBlas::SerialBlas() {
  const auto& api = blas_api();
  if (!api.set) return;
  std::lock_guard<std::mutex> lock(g_blas_mutex);
  if (g_serial_guards++ == 0) {
    g_saved_blas_threads = api.get();
    if (g_saved_blas_threads != 1) api.set(1);
  }
}

SerialBlas::~SerialBlas() {
  const auto& api = blas_api();
  if (!api.set) return;
  std::lock_guard<std::mutex> lock(g_blas_mutex);
  if (--g_serial_guards == 0 && g_saved_blas_threads != 1) api.set(g_saved_blas_threads);
}

int SerialBlas::blas_threads() {
  const auto& api = blas_api();
  return api.get ? api.get() : 1;
}

}  // namespace doppel
