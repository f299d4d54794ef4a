// A byte range copied from one open file to another without the bytes passing through JS (the local store's copy
// of an index's stored vectors from the .knnvec). The first method that the file system accepts:
//   1. FICLONERANGE (a reflink: XFS, btrfs; no data written) when both offsets and the length are block-aligned.
//      They usually are not: the range starts after the index's header and graph, whose size is whatever it is.
//   2. copy_file_range(2) over disjoint chunks from several threads, each call with its own offsets (the kernel
//      copies page-cache pages; on XFS/btrfs it reflinks what it can).
//   3. pread + pwrite from several threads (the file systems that refuse 2: EXDEV, EOPNOTSUPP, ENOSYS, EINVAL).
// The result names the method and why the earlier ones were passed over. Each written chunk's writeback is started
// at once (sync_file_range WRITE), so the caller's fsync at the end has less left to wait for.
#include "copy_range.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <utility>

#include "parallel.h"

namespace knn::io {
namespace {

// errno values meaning "this file system (pair) will not do it this way", not "the copy failed".
bool notSupported(int e) { return e == EXDEV || e == EOPNOTSUPP || e == ENOSYS || e == EINVAL; }

constexpr int64_t kBounceBytes = int64_t{8} << 20;

struct CopyOptions {
  int threads;
  int64_t chunkBytes;
  bool reflink;
  bool copyFileRange;
  bool writeback;
};

class CopyWorker : public TransferWorker {
 public:
  CopyWorker(Napi::Env env, int in, int64_t inOff, int out, int64_t outOff, int64_t length, CopyOptions options,
             std::string label, int32_t* cancel, std::vector<Napi::Reference<Napi::Value>> keepAlive,
             Napi::Function onProgress)
      : TransferWorker(env, length, std::move(label), cancel, std::move(keepAlive), onProgress),
        in_(in),
        inOff_(inOff),
        out_(out),
        outOff_(outOff),
        options_(options) {}

 protected:
  void Execute(const ExecutionProgress& progress) override {
    struct stat src;
    if ((failure_ = checkHolds(in_, inOff_, total_, "copy_file_range", src))) return;
    if (total_ == 0) {
      method_ = "copy_file_range";
      return;
    }
    if (tryReflink(src)) return;
    std::atomic<bool> fallback{!options_.copyFileRange};
    if (!options_.copyFileRange) note("copy_file_range was turned off (a test option)");
    std::mutex noteMutex;
    std::vector<std::unique_ptr<uint8_t[]>> bounce(static_cast<size_t>(options_.threads));
    auto work = [&](int64_t start, int64_t length, int worker) -> IoFailure {
      IoFailure f;
      if (!fallback.load(std::memory_order_relaxed)) {
        f = copyKernel(start, length);
        if (f && notSupported(f.code)) {
          {
            std::lock_guard<std::mutex> lock(noteMutex);
            if (!fallback.exchange(true))
              note("the file system refused copy_file_range (" + std::string(errnoName(f.code)) + ")");
          }
          f = copyUser(start, length, bounce[static_cast<size_t>(worker)]);  // the whole chunk again
        }
      } else {
        f = copyUser(start, length, bounce[static_cast<size_t>(worker)]);
      }
      if (f) return f;
      if (options_.writeback)
        sync_file_range(out_, outOff_ + start, length, SYNC_FILE_RANGE_WRITE);  // start it; errors show at fsync
      return {};
    };
    failure_ = runReporting(progress, inOff_, options_.chunkBytes, options_.threads, work);
    method_ = fallback ? "pread/pwrite" : "copy_file_range";
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    result.Set("bytes", Napi::Number::New(env, static_cast<double>(total_)));
    result.Set("method", Napi::String::New(env, method_));
    if (!notes_.empty()) result.Set("reason", Napi::String::New(env, notes_));
    return result;
  }

 private:
  void note(const std::string& why) { notes_ += (notes_.empty() ? "" : "; ") + why; }

  // One ioctl for the whole range where the file system shares blocks; false (with a note) where it cannot.
  bool tryReflink(const struct stat& src) {
    if (!options_.reflink) return false;
    const int64_t block = std::max<int64_t>(src.st_blksize, 4096);
    const bool toEnd = inOff_ + total_ == src.st_size;
    if (inOff_ % block != 0 || outOff_ % block != 0 || (total_ % block != 0 && !toEnd)) return false;  // the usual case
    file_clone_range range{in_, static_cast<uint64_t>(inOff_), static_cast<uint64_t>(total_),
                           static_cast<uint64_t>(outOff_)};
    if (ioctl(out_, FICLONERANGE, &range) == 0) {
      method_ = "reflink";
      return true;
    }
    if (errno != EOPNOTSUPP && errno != ENOTTY && errno != EXDEV && errno != EINVAL)
      note(std::string("reflink failed (") + errnoName(errno) + ")");
    return false;
  }

  IoFailure copyKernel(int64_t start, int64_t length) {
    loff_t inOff = inOff_ + start, outOff = outOff_ + start;
    for (int64_t copied = 0; copied < length;) {
      ssize_t n = copy_file_range(in_, &inOff, out_, &outOff, static_cast<size_t>(length - copied), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return failure(errno, "copy_file_range", atByte(inOff));
      }
      if (n == 0) return failure(kShortFile, "copy_file_range", " (it ended at byte " + std::to_string(inOff) + ")");
      copied += n;
    }
    return {};
  }

  IoFailure copyUser(int64_t start, int64_t length, std::unique_ptr<uint8_t[]>& buffer) {
    const int64_t size = std::min(options_.chunkBytes, kBounceBytes);
    if (!buffer) buffer.reset(new uint8_t[static_cast<size_t>(size)]);
    for (int64_t at = start; at < start + length;) {
      const int64_t piece = std::min(size, start + length - at);
      for (int64_t got = 0; got < piece;) {
        ssize_t n = pread(in_, buffer.get() + got, static_cast<size_t>(piece - got), inOff_ + at + got);
        if (n < 0) {
          if (errno == EINTR) continue;
          return failure(errno, "pread", atByte(inOff_ + at + got));
        }
        if (n == 0) return failure(kShortFile, "pread", " (it ended at byte " + std::to_string(inOff_ + at + got) + ")");
        got += n;
      }
      for (int64_t put = 0; put < piece;) {
        ssize_t n = pwrite(out_, buffer.get() + put, static_cast<size_t>(piece - put), outOff_ + at + put);
        if (n < 0) {
          if (errno == EINTR) continue;
          return failure(errno, "pwrite", atByte(outOff_ + at + put));
        }
        put += n;
      }
      at += piece;
    }
    return {};
  }

  int in_;
  int64_t inOff_;
  int out_;
  int64_t outOff_;
  CopyOptions options_;
  std::string method_;
  std::string notes_;
};

}  // namespace

Napi::Value CopyFileRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t in = integerArg(info, 0, "srcFd");
  int64_t inOff = integerArg(info, 1, "srcOffset");
  int64_t out = integerArg(info, 2, "dstFd");
  int64_t outOff = integerArg(info, 3, "dstOffset");
  int64_t length = integerArg(info, 4, "length");
  Napi::Object o = info.Length() > 5 && info[5].IsObject() ? info[5].As<Napi::Object>() : Napi::Object::New(env);
  std::vector<Napi::Reference<Napi::Value>> keepAlive;
  CopyOptions options{
      static_cast<int>(optionInt(o, "threads", defaultThreads(), 1, 64)),
      optionInt(o, "chunkBytes", kDefaultCopyChunkBytes, 1, int64_t{1} << 30),
      optionFlag(o, "reflink", true),
      optionFlag(o, "copyFileRange", true),
      optionFlag(o, "writeback", true),
  };
  Napi::Value labelValue = o.Get("label");
  std::string label = labelValue.IsString() ? labelValue.As<Napi::String>().Utf8Value()
                                            : "fd " + std::to_string(in) + " -> fd " + std::to_string(out);
  int32_t* cancel = optionCancel(o, keepAlive);
  Napi::Function onProgress =
      info.Length() > 6 && info[6].IsFunction() ? info[6].As<Napi::Function>() : Napi::Function();
  auto* worker = new CopyWorker(env, static_cast<int>(in), inOff, static_cast<int>(out), outOff, length, options,
                                std::move(label), cancel, std::move(keepAlive), onProgress);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace knn::io
