// copy_file_range(2) in a worker thread. The file system copies (or reflinks, on XFS/btrfs) the range without
// the bytes passing through user space. A short copy (0 bytes before `length`) means the source shrank.
#include "copy_range.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <sys/types.h>
#include <unistd.h>

namespace knn::io {
namespace {

const char* errnoName(int e) {
  switch (e) {
    case EXDEV: return "EXDEV";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EBADF: return "EBADF";
    case EIO: return "EIO";
    case ENOSPC: return "ENOSPC";
    case EFBIG: return "EFBIG";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    default: return "EIO";
  }
}

class CopyWorker : public Napi::AsyncWorker {
 public:
  CopyWorker(Napi::Env env, int in, int64_t inOff, int out, int64_t outOff, int64_t length)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), in_(in), inOff_(inOff), out_(out),
        outOff_(outOff), length_(length) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    loff_t inOff = inOff_, outOff = outOff_;
    while (copied_ < length_) {
      size_t want = static_cast<size_t>(std::min<int64_t>(length_ - copied_, int64_t{1} << 30));
      ssize_t n = copy_file_range(in_, &inOff, out_, &outOff, want, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        errno_ = errno;
        return;
      }
      if (n == 0) break;  // end of the source
      copied_ += n;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (errno_ != 0) {
      Napi::Error error = Napi::Error::New(env, std::string("copy_file_range: ") + std::strerror(errno_));
      error.Set("code", Napi::String::New(env, errnoName(errno_)));
      error.Set("bytesCopied", Napi::Number::New(env, static_cast<double>(copied_)));
      deferred_.Reject(error.Value());
      return;
    }
    deferred_.Resolve(Napi::Number::New(env, static_cast<double>(copied_)));
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int in_;
  int64_t inOff_;
  int out_;
  int64_t outOff_;
  int64_t length_;
  int64_t copied_ = 0;
  int errno_ = 0;
};

int64_t integerArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0) || v > 9007199254740991.0 || v != static_cast<double>(static_cast<int64_t>(v))) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be a non-negative integer");
  }
  return static_cast<int64_t>(v);
}

}  // namespace

Napi::Value CopyFileRange(const Napi::CallbackInfo& info) {
  int64_t in = integerArg(info, 0, "srcFd");
  int64_t inOff = integerArg(info, 1, "srcOffset");
  int64_t out = integerArg(info, 2, "dstFd");
  int64_t outOff = integerArg(info, 3, "dstOffset");
  int64_t length = integerArg(info, 4, "length");
  auto* worker = new CopyWorker(info.Env(), static_cast<int>(in), inOff, static_cast<int>(out), outOff, length);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace knn::io
