// A file range read into JS memory by several threads with large preads (the local store's download). Why not
// Node's fs reads: each is one libuv pool job (4 threads by default, shared with everything else) of at most
// 2 GiB, and each round trip through the event loop costs; here the threads read straight into the blob.
//
// O_DIRECT only when asked (options.direct; off in the store): the common case is a .knnvec that was just written
// (warm page cache), which O_DIRECT would read from the device again, and it needs 4 KiB-aligned memory, which
// JS buffers are not (a bounce copy per chunk). Buffered, posix_fadvise(SEQUENTIAL) widens the kernel's readahead
// and WILLNEED starts the next chunks early, which is what a cold read needs from us. bench/local-store.ts
// measures both cold against `dd iflag=direct`.
#include "read_range.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <utility>

#include "parallel.h"

namespace knn::io {
namespace {

// O_DIRECT's alignment of file offsets, lengths and memory (the logical block size is at most this).
constexpr int64_t kDirectAlign = 4096;

struct Target {
  uint8_t* data;
  int64_t bytes;
};

// A fresh blob faults in on first touch, 4 KiB at a time (zeroed by the kernel first): for a multi-GB blob the
// faults cost more than the copy from the page cache (dd, reading into one reused buffer, pays none). Asking for
// transparent huge pages on the target (THP in "madvise" mode, the usual default) makes them 2 MiB each. Only the
// 2 MiB-aligned inside of a target is advised; where THP is off it changes nothing. bench/local-store.ts measures
// reads with and without it (hugePages: false).
void preferHugePages(const Target& t) {
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(t.data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(t.data) + static_cast<uintptr_t>(t.bytes)) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

class ReadWorker : public TransferWorker {
 public:
  ReadWorker(Napi::Env env, int fd, int64_t offset, std::vector<Target> targets, std::string label, int threads,
             int64_t chunkBytes, bool hugePages, bool direct, int32_t* cancel,
             std::vector<Napi::Reference<Napi::Value>> keepAlive, Napi::Function onProgress)
      : TransferWorker(env, sum(targets), std::move(label), cancel, std::move(keepAlive), onProgress),
        fd_(fd),
        offset_(offset),
        targets_(std::move(targets)),
        threads_(threads),
        chunkBytes_(chunkBytes),
        hugePages_(hugePages),
        direct_(direct) {
    starts_.push_back(0);
    for (const Target& t : targets_) starts_.push_back(starts_.back() + t.bytes);
  }

 protected:
  void Execute(const ExecutionProgress& progress) override {
    struct stat st;
    if ((failure_ = checkHolds(fd_, offset_, total_, "pread", st))) return;
    if (total_ > 0) posix_fadvise(fd_, offset_, total_, POSIX_FADV_SEQUENTIAL);
    if (hugePages_)
      for (const Target& t : targets_) preferHugePages(t);
    // O_DIRECT (asked for): a second open file description of the same file; where the file system refuses it
    // (tmpfs, some overlays), the buffered reads below.
    int directFd = -1;
    if (direct_) directFd = open(("/proc/self/fd/" + std::to_string(fd_)).c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    std::vector<std::unique_ptr<uint8_t, decltype(&std::free)>> bounce;
    for (int t = 0; directFd >= 0 && t < threads_; t++) bounce.emplace_back(nullptr, &std::free);
    const int64_t lookahead = chunkBytes_ * threads_;
    auto work = [&](int64_t start, int64_t length, int worker) -> IoFailure {
      IoFailure f;
      if (directFd >= 0) {
        auto& buffer = bounce[static_cast<size_t>(worker)];
        if (!buffer) buffer.reset(static_cast<uint8_t*>(std::aligned_alloc(kDirectAlign, directBounceBytes())));
        if (!buffer) return failure(ENOMEM, "aligned_alloc", "");
        f = readRangeDirect(start, length, directFd, buffer.get());
        if (f.code == EINVAL) f = readRange(start, length);  // an alignment this file system will not take
      } else {
        // Ask for the chunk the threads will reach next round (cheap when cached, readahead when not).
        if (start + lookahead < total_)
          posix_fadvise(fd_, offset_ + start + lookahead, std::min(chunkBytes_, total_ - start - lookahead),
                        POSIX_FADV_WILLNEED);
        f = readRange(start, length);
      }
      return f;
    };
    failure_ = runReporting(progress, offset_, chunkBytes_, threads_, work);
    if (directFd >= 0) close(directFd);
  }

  // A chunk's aligned span: the chunk plus up to one alignment unit at each end, rounded up.
  size_t directBounceBytes() const {
    return static_cast<size_t>((chunkBytes_ + 3 * kDirectAlign - 1) & ~(kDirectAlign - 1));
  }

  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, static_cast<double>(total_)); }

 private:
  // Reads [start, start + length) of the range into the targets it spans.
  IoFailure readRange(int64_t start, int64_t length) {
    return scatter(start, length, [&](uint8_t* into, int64_t at, int64_t bytes) -> IoFailure {
      for (int64_t got = 0; got < bytes;) {
        ssize_t n = pread(fd_, into + got, static_cast<size_t>(bytes - got), offset_ + at + got);
        if (n < 0) {
          if (errno == EINTR) continue;
          return failure(errno, "pread", atByte(offset_ + at + got));
        }
        if (n == 0) return failure(kShortFile, "pread", " (it ended at byte " + std::to_string(offset_ + at + got) + ")");
        got += n;
      }
      return {};
    });
  }

  // The same through O_DIRECT: the 4 KiB-aligned span around the chunk into an aligned buffer, then copied out.
  IoFailure readRangeDirect(int64_t start, int64_t length, int directFd, uint8_t* bounce) {
    const int64_t first = (offset_ + start) & ~(kDirectAlign - 1);
    const int64_t last = (offset_ + start + length + kDirectAlign - 1) & ~(kDirectAlign - 1);
    const int64_t need = offset_ + start + length - first;
    int64_t got = 0;
    while (got < need) {
      ssize_t n = pread(directFd, bounce + got, static_cast<size_t>(last - first - got), first + got);
      if (n < 0) {
        if (errno == EINTR) continue;
        return failure(errno, "pread (O_DIRECT)", atByte(first + got));
      }
      if (n == 0) return failure(kShortFile, "pread", " (it ended at byte " + std::to_string(first + got) + ")");
      got += n;
    }
    return scatter(start, length, [&](uint8_t* into, int64_t at, int64_t bytes) -> IoFailure {
      std::memcpy(into, bounce + (offset_ + at - first), static_cast<size_t>(bytes));
      return {};
    });
  }

  // Calls fill(into, at, bytes) for the pieces of [start, start + length) of the range, one per target spanned.
  template <typename Fill>
  IoFailure scatter(int64_t start, int64_t length, Fill&& fill) {
    size_t i = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), start) - starts_.begin()) - 1;
    int64_t at = start;
    const int64_t end = start + length;
    while (at < end) {
      while (i + 1 < starts_.size() && starts_[i + 1] <= at) i++;  // skip targets already filled (or empty)
      const int64_t piece = std::min(end, starts_[i + 1]) - at;
      if (IoFailure f = fill(targets_[i].data + (at - starts_[i]), at, piece)) return f;
      at += piece;
    }
    return {};
  }

  static int64_t sum(const std::vector<Target>& targets) {
    int64_t n = 0;
    for (const Target& t : targets) n += t.bytes;
    return n;
  }

  int fd_;
  int64_t offset_;
  std::vector<Target> targets_;
  std::vector<int64_t> starts_;
  int threads_;
  int64_t chunkBytes_;
  bool hugePages_;
  bool direct_;
};

}  // namespace

Napi::Value ReadFileRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t fd = integerArg(info, 0, "fd");
  const int64_t offset = integerArg(info, 1, "offset");
  if (info.Length() < 3 || !info[2].IsArray())
    throw Napi::TypeError::New(env, "targets must be an array of Uint8Arrays");
  std::vector<Napi::Reference<Napi::Value>> keepAlive;
  std::vector<Target> targets;
  Napi::Array list = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Napi::TypeError::New(env, "targets[" + std::to_string(i) + "] must be a Uint8Array");
    Napi::Uint8Array a = v.As<Napi::Uint8Array>();
    // Through the ArrayBuffer: its memory is off the V8 heap (never moved by the GC) once asked for.
    targets.push_back({static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset(), static_cast<int64_t>(a.ByteLength())});
    keepAlive.emplace_back(Napi::Persistent(v));
  }
  Napi::Object options = info.Length() > 3 && info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env);
  Napi::Value labelValue = options.Get("label");
  const std::string label = labelValue.IsString() ? labelValue.As<Napi::String>().Utf8Value() : "fd " + std::to_string(fd);
  const int threads = static_cast<int>(optionInt(options, "threads", defaultThreads(), 1, 64));
  const int64_t chunkBytes = optionInt(options, "chunkBytes", kDefaultReadChunkBytes, 1, int64_t{1} << 30);
  const bool hugePages = optionFlag(options, "hugePages", true);
  const bool direct = optionFlag(options, "direct", false);
  int32_t* cancel = optionCancel(options, keepAlive);
  Napi::Function onProgress =
      info.Length() > 4 && info[4].IsFunction() ? info[4].As<Napi::Function>() : Napi::Function();
  auto* worker = new ReadWorker(env, static_cast<int>(fd), offset, std::move(targets), label, threads, chunkBytes,
                                hugePages, direct, cancel, std::move(keepAlive), onProgress);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace knn::io
