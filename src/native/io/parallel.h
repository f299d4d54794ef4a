// Shared by the file reads and copies of io/: a byte range cut into chunks on absolute file-offset boundaries,
// worked through by several threads, with a cancel flag checked between chunks, a progress count, and the first
// failure (errno + what was being done) kept for the JS side.
#pragma once
#include <napi.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace knn::io {

// Not errno values: the source ended before the range did, and the caller's cancel flag.
constexpr int kShortFile = -1;
constexpr int kCancelled = -2;

struct IoFailure {
  int code = 0;        // errno, kShortFile or kCancelled; 0: none
  std::string op;      // the call that failed: "pread", "copy_file_range", ...
  std::string detail;  // where, e.g. " at byte 4096"
  explicit operator bool() const { return code != 0; }
};

inline IoFailure failure(int code, const char* op, const std::string& detail) { return {code, op, detail}; }
inline std::string atByte(int64_t offset) { return " at byte " + std::to_string(offset); }

inline const char* errnoName(int e) {
  switch (e) {
    case kShortFile: return "ESHRANK";
    case kCancelled: return "ABORT_ERR";
    case EXDEV: return "EXDEV";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EBADF: return "EBADF";
    case EIO: return "EIO";
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    case EFBIG: return "EFBIG";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EISDIR: return "EISDIR";
    case ENOMEM: return "ENOMEM";
    case ETXTBSY: return "ETXTBSY";
    default: return "EIO";
  }
}

// The JS error, in Node's own shape ("EIO: Input/output error at byte 0, pread 'local://c/k'") so callers that
// strip the operation and path from fs errors do the same here; `code` is the errno name.
inline Napi::Error toJsError(Napi::Env env, const IoFailure& f, const std::string& label) {
  std::string text = f.code == kShortFile  ? "the file is shorter than expected"
                     : f.code == kCancelled ? "cancelled"
                                            : std::strerror(f.code);
  std::string message =
      std::string(errnoName(f.code)) + ": " + text + f.detail + ", " + f.op + " '" + label + "'";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, errnoName(f.code)));
  if (f.code > 0) error.Set("errno", Napi::Number::New(env, -f.code));
  return error;
}

inline bool cancelled(const int32_t* flag) {
  return flag != nullptr && __atomic_load_n(flag, __ATOMIC_RELAXED) != 0;
}

// Runs work(start, length) over [0, total) in chunks whose boundaries fall on multiples of chunkBytes of the
// absolute file offset (`base` + relative offset), so every read but the first starts aligned. Chunks go to
// `threads` threads in order (each takes the next one), so the file is still read front to back. The first
// failure stops the others after their current chunk. While the threads run, tick() is called on this thread
// every ~50 ms and once at the end (progress reports). Returns once every thread has ended.
inline IoFailure runChunks(int64_t base, int64_t total, int64_t chunkBytes, int threads, const int32_t* cancel,
                           const std::function<IoFailure(int64_t start, int64_t length, int worker)>& work,
                           const std::function<void()>& tick) {
  if (total <= 0) return {};
  const int64_t lead = base % chunkBytes;  // the first chunk ends at the first boundary
  const int64_t chunks = (lead + total + chunkBytes - 1) / chunkBytes;
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, chunks)));
  std::atomic<int64_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::condition_variable finishedCv;
  int running = threads;
  IoFailure first;
  auto loop = [&](int worker) {
    for (;;) {
      if (stop.load(std::memory_order_relaxed)) break;
      if (cancelled(cancel)) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!first) first = failure(kCancelled, "stopped", "");
        stop = true;
        break;
      }
      const int64_t i = next.fetch_add(1);
      if (i >= chunks) break;
      const int64_t start = std::max<int64_t>(0, i * chunkBytes - lead);
      const int64_t end = std::min<int64_t>(total, (i + 1) * chunkBytes - lead);
      IoFailure f = work(start, end - start, worker);
      if (f) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!first) first = std::move(f);
        stop = true;
        break;
      }
    }
    std::lock_guard<std::mutex> lock(mutex);
    if (--running == 0) finishedCv.notify_all();
  };
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; t++) pool.emplace_back(loop, t);
  {
    std::unique_lock<std::mutex> lock(mutex);
    while (running > 0) {
      finishedCv.wait_for(lock, std::chrono::milliseconds(50));
      lock.unlock();
      tick();
      lock.lock();
    }
  }
  for (auto& t : pool) t.join();
  return first;
}

// How many threads a transfer uses when the caller does not say: one per core, at most 8 (a page-cache copy
// saturates memory bandwidth with fewer; an NVMe queue is kept full with far fewer).
inline int defaultThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp<unsigned>(n == 0 ? 2 : n, 2, 8));
}

// Optional numeric field of an options object, checked: a non-negative integer up to `max`.
inline int64_t optionInt(const Napi::Object& o, const char* key, int64_t fallback, int64_t min, int64_t max) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("options.") + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) || d != static_cast<double>(static_cast<int64_t>(d)))
    throw Napi::RangeError::New(o.Env(), std::string("options.") + key + " must be an integer from " +
                                             std::to_string(min) + " to " + std::to_string(max));
  return static_cast<int64_t>(d);
}

// Optional boolean field of an options object.
inline bool optionFlag(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string("options.") + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

// options.cancel: an Int32Array whose element 0 becomes non-zero to stop (checked between chunks).
inline int32_t* optionCancel(const Napi::Object& o, std::vector<Napi::Reference<Napi::Value>>& keepAlive) {
  Napi::Value v = o.Get("cancel");
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      v.As<Napi::TypedArray>().ElementLength() < 1)
    throw Napi::TypeError::New(o.Env(), "options.cancel must be an Int32Array of at least one element");
  keepAlive.emplace_back(Napi::Persistent(v));
  return v.As<Napi::Int32Array>().Data();
}

// A non-negative safe integer argument (file descriptors, offsets, lengths).
inline int64_t integerArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0) || v > 9007199254740991.0 || v != static_cast<double>(static_cast<int64_t>(v))) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be a non-negative integer");
  }
  return static_cast<int64_t>(v);
}

// What both transfers share on the N-API side: the promise, progress (bytes done) to an optional JS callback every
// ~50 ms, the first failure rejected as an Error naming the errno and `label`, the JS values kept alive throughout.
class TransferWorker : public Napi::AsyncProgressWorker<double> {
 public:
  TransferWorker(Napi::Env env, int64_t total, std::string label, int32_t* cancel,
                 std::vector<Napi::Reference<Napi::Value>> keepAlive, Napi::Function onProgress)
      : Napi::AsyncProgressWorker<double>(env),
        total_(total),
        label_(std::move(label)),
        cancel_(cancel),
        deferred_(Napi::Promise::Deferred::New(env)),
        keepAlive_(std::move(keepAlive)) {
    if (!onProgress.IsEmpty()) onProgress_ = Napi::Persistent(onProgress);
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  // What the promise resolves with (on the JS thread, after Execute succeeded).
  virtual Napi::Value Result(Napi::Env env) = 0;

  // Fails unless `fd` (when a regular file) holds [offset, offset + length): a file shorter than the range.
  IoFailure checkHolds(int fd, int64_t offset, int64_t length, const char* op, struct stat& st) {
    if (fstat(fd, &st) != 0) return failure(errno, "fstat", "");
    if (S_ISREG(st.st_mode) && st.st_size < offset + length)
      return failure(kShortFile, op,
                     " (" + std::to_string(st.st_size) + " bytes; bytes " + std::to_string(offset) + " to " +
                         std::to_string(offset + length) + " were asked for)");
    return {};
  }

  // runChunks over [0, total_) with this worker's cancel flag, counting finished chunks into the progress reports.
  IoFailure runReporting(const ExecutionProgress& progress, int64_t base, int64_t chunkBytes, int threads,
                         const std::function<IoFailure(int64_t start, int64_t length, int worker)>& work) {
    std::atomic<int64_t> done{0};
    auto counted = [&](int64_t start, int64_t length, int worker) {
      IoFailure f = work(start, length, worker);
      if (!f) done.fetch_add(length, std::memory_order_relaxed);
      return f;
    };
    auto tick = [&] {
      double d = static_cast<double>(done.load(std::memory_order_relaxed));
      progress.Send(&d, 1);
    };
    return runChunks(base, total_, chunkBytes, threads, cancel_, counted, tick);
  }

  void OnProgress(const double* data, size_t count) override {
    if (count > 0) report(data[count - 1]);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (failure_) {
      settled_ = true;
      deferred_.Reject(toJsError(env, failure_, label_).Value());
      return;
    }
    // The last report is the total, before the promise resolves (the threads' last tick may still be queued: it
    // is dropped, so reports never go backwards).
    report(static_cast<double>(total_));
    settled_ = true;
    deferred_.Resolve(Result(env));
  }

  void OnError(const Napi::Error& e) override {
    settled_ = true;
    deferred_.Reject(e.Value());
  }

  const int64_t total_;
  const std::string label_;
  int32_t* const cancel_;
  IoFailure failure_;

 private:
  void report(double done) {
    if (onProgress_.IsEmpty() || settled_ || done < reported_) return;
    reported_ = done;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      onProgress_.Call({Napi::Number::New(env, done), Napi::Number::New(env, static_cast<double>(total_))});
    } catch (const Napi::Error&) {
      // A throwing progress callback is the caller's bug, not the transfer's: never an exception out of here.
    }
  }

  Napi::Promise::Deferred deferred_;
  std::vector<Napi::Reference<Napi::Value>> keepAlive_;
  Napi::FunctionReference onProgress_;
  bool settled_ = false;
  double reported_ = 0;
};

}  // namespace knn::io
