// N-API entry: the one narrow door between TypeScript and the builders (the sharp pattern).
// TypeScript validates and fills one options object; build() runs the whole graph build off the JS
// thread in an AsyncProgressQueueWorker and resolves with the graph as zero-copy typed arrays.
#include <napi.h>

#include <unistd.h>

#include <chrono>
#include <exception>
#include <memory>
#include <thread>
#include <string>
#include <utility>
#include <vector>

#include "knn/build.h"
#include "convert/convert.h"
#include "io/copy_range.h"
#include "io/read_range.h"

namespace {

using knn::BuildOptions;
using knn::GraphResult;

std::string requireString(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("options.") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

int64_t requireInt(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("options.") + key + " must be a number");
  return v.As<Napi::Number>().Int64Value();
}

int64_t optionalInt(const Napi::Object& o, const char* key, int64_t fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int64Value() : fallback;
}

knn::DataType parseDataType(Napi::Env env, const std::string& s) {
  if (s == "float") return knn::DataType::Float32;
  if (s == "half_float") return knn::DataType::Float16;
  if (s == "byte") return knn::DataType::Int8;
  if (s == "binary") return knn::DataType::Binary;
  throw Napi::TypeError::New(env, "options.dataType: unknown data type '" + s + "'");
}

knn::Metric parseMetric(Napi::Env env, const std::string& s) {
  if (s == "l2") return knn::Metric::L2;
  if (s == "innerproduct") return knn::Metric::InnerProduct;
  if (s == "hamming") return knn::Metric::Hamming;
  throw Napi::TypeError::New(env, "options.metric: unknown metric '" + s + "'");
}

std::size_t bytesPerVector(knn::DataType t, int dimension) {
  switch (t) {
    case knn::DataType::Float32: return 4u * dimension;
    case knn::DataType::Float16: return 2u * dimension;
    case knn::DataType::Int8: return static_cast<std::size_t>(dimension);
    case knn::DataType::Binary: return static_cast<std::size_t>(dimension) / 8;
  }
  return 0;
}

// Reads and checks the options object. The chunks stay alive through `keepAlive`. `shapeOnly` (plannedLayout):
// options.count may stand for the chunks, so a job can plan the file before its vectors have arrived.
BuildOptions parseOptions(const Napi::Object& o, std::vector<Napi::Reference<Napi::Value>>& keepAlive,
                          bool shapeOnly = false) {
  Napi::Env env = o.Env();
  BuildOptions b;
  b.dataType = parseDataType(env, requireString(o, "dataType"));
  b.metric = parseMetric(env, requireString(o, "metric"));
  b.dimension = static_cast<int>(requireInt(o, "dimension"));
  b.m = static_cast<int>(requireInt(o, "m"));
  b.efConstruction = static_cast<int>(requireInt(o, "efConstruction"));
  b.efSearch = static_cast<int>(requireInt(o, "efSearch"));
  b.threads = static_cast<int>(optionalInt(o, "threads", 0));
  b.seed = static_cast<uint64_t>(optionalInt(o, "seed", 1234));
  Napi::Value h = o.Get("hierarchical");
  b.hierarchical = h.IsBoolean() ? h.As<Napi::Boolean>().Value() : true;
  Napi::Value pk = o.Get("portableKernels");
  b.portableKernels = pk.IsBoolean() && pk.As<Napi::Boolean>().Value();
  if (b.dimension <= 0) throw Napi::RangeError::New(env, "options.dimension must be > 0");
  if (b.dataType == knn::DataType::Binary && b.dimension % 8 != 0)
    throw Napi::RangeError::New(env, "options.dimension must be a multiple of 8 for binary data");

  Napi::Value gv = o.Get("gpu");
  if (gv.IsObject()) {
    Napi::Object g = gv.As<Napi::Object>();
    b.gpu.device = static_cast<int>(optionalInt(g, "device", 0));
    b.gpu.memoryLimitBytes = static_cast<std::size_t>(optionalInt(g, "memoryLimitBytes", 0));
    b.gpu.intermediateDegree = static_cast<int>(optionalInt(g, "intermediateDegree", 0));
    b.gpu.graphDegree = static_cast<int>(optionalInt(g, "graphDegree", 0));
    Napi::Value a = g.Get("knnAlgorithm");
    if (a.IsString()) b.gpu.knnAlgorithm = a.As<Napi::String>().Utf8Value();
    Napi::Value tv = g.Get("tuning");
    if (tv.IsObject()) {
      Napi::Object t = tv.As<Napi::Object>();
      auto& u = b.gpu.tuning;
      const auto flag = [&](const char* key) {
        Napi::Value v = t.Get(key);
        return v.IsBoolean() && v.As<Napi::Boolean>().Value();
      };
      u.ivfProbes = static_cast<int>(optionalInt(t, "ivfProbes", u.ivfProbes));
      u.ivfLists = static_cast<int>(optionalInt(t, "ivfLists", u.ivfLists));
      u.ladderLevels = static_cast<int>(optionalInt(t, "ladderLevels", u.ladderLevels));
      u.bridges = static_cast<int>(optionalInt(t, "bridges", u.bridges));
      u.verbose = flag("verbose");
      u.debugRecall = flag("debugRecall");
      u.debugKnnStage = flag("debugKnnStage");
    }
  }

  // options.cancel: an Int32Array of at least one element; the build stops soon after element 0 becomes non-zero.
  Napi::Value cancel = o.Get("cancel");
  if (!cancel.IsUndefined() && !cancel.IsNull()) {
    if (!cancel.IsTypedArray() || cancel.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
        cancel.As<Napi::TypedArray>().ElementLength() < 1)
      throw Napi::TypeError::New(env, "options.cancel must be an Int32Array of at least one element");
    Napi::Int32Array flag = cancel.As<Napi::Int32Array>();
    b.cancel = flag.Data();
    keepAlive.emplace_back(Napi::Persistent(cancel));
  }

  Napi::Value cv = o.Get("chunks");
  if (!cv.IsArray()) throw Napi::TypeError::New(env, "options.chunks must be an array of typed arrays");
  Napi::Array chunks = cv.As<Napi::Array>();
  const std::size_t vecBytes = bytesPerVector(b.dataType, b.dimension);
  for (uint32_t i = 0; i < chunks.Length(); i++) {
    Napi::Value c = chunks.Get(i);
    if (!c.IsTypedArray()) throw Napi::TypeError::New(env, "options.chunks[" + std::to_string(i) + "] must be a typed array");
    Napi::TypedArray ta = c.As<Napi::TypedArray>();
    knn::VectorChunk chunk;
    chunk.data = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    chunk.bytes = ta.ByteLength();
    if (chunk.bytes % vecBytes != 0)
      throw Napi::RangeError::New(env, "options.chunks[" + std::to_string(i) + "] does not hold whole vectors");
    chunk.count = static_cast<int64_t>(chunk.bytes / vecBytes);
    b.count += chunk.count;
    b.chunks.push_back(chunk);
    keepAlive.emplace_back(Napi::Persistent(c));
  }
  if (shapeOnly && b.chunks.empty()) b.count = optionalInt(o, "count", 0);
  if (b.count <= 0) throw Napi::RangeError::New(env, "options.chunks hold no vectors");
  return b;
}

// Hands a std::vector's storage to JS without copying: the ArrayBuffer's finalizer frees it.
template <typename T, typename ArrayT>
Napi::Value toTypedArray(Napi::Env env, std::vector<T>&& v) {
  if (v.empty()) return ArrayT::New(env, 0);
  auto* owned = new std::vector<T>(std::move(v));
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
      env, owned->data(), owned->size() * sizeof(T),
      [](Napi::Env, void*, std::vector<T>* p) { delete p; }, owned);
  return ArrayT::New(env, owned->size(), ab, 0);
}

struct Progress {
  double fraction;
  std::string stage;
};

class BuildWorker : public Napi::AsyncProgressQueueWorker<Progress> {
 public:
  BuildWorker(Napi::Env env, std::string builder, BuildOptions options,
              std::vector<Napi::Reference<Napi::Value>> keepAlive, Napi::Function onProgress)
      : Napi::AsyncProgressQueueWorker<Progress>(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        builder_(std::move(builder)),
        options_(std::move(options)),
        keepAlive_(std::move(keepAlive)) {
    if (!onProgress.IsEmpty()) onProgress_ = Napi::Persistent(onProgress);
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute(const ExecutionProgress& progress) override {
    knn::ProgressFn report = [&progress](double fraction, const std::string& stage) {
      Progress p{fraction, stage};
      progress.Send(&p, 1);
    };
    try {
      result_ = builder_ == "gpu" ? knn::buildGpu(options_, report) : knn::buildCpu(options_, report);
    } catch (const knn::BuildCancelled& e) {
      SetError(e.what());  // "build cancelled": the caller asked for it, not a failure of the builder
    } catch (const std::exception& e) {
      SetError(std::string(builder_ == "gpu" ? "GPU" : "CPU") + " build failed: " + e.what());
    } catch (...) {
      SetError("build failed with an unknown native exception");
    }
  }

  void OnProgress(const Progress* data, size_t count) override {
    if (onProgress_.IsEmpty()) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    for (size_t i = 0; i < count; i++) {
      onProgress_.Call({Napi::Number::New(env, data[i].fraction), Napi::String::New(env, data[i].stage)});
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("M", result_.M);
    out.Set("levels", toTypedArray<int32_t, Napi::Int32Array>(env, std::move(result_.levels)));
    out.Set("neighbors", toTypedArray<int32_t, Napi::Int32Array>(env, std::move(result_.neighbors)));
    out.Set("entryPoint", result_.entryPoint);
    out.Set("maxLevel", result_.maxLevel);
    out.Set("assignProbas", toTypedArray<double, Napi::Float64Array>(env, std::move(result_.assignProbas)));
    out.Set("cumNeighborPerLevel",
            toTypedArray<int32_t, Napi::Int32Array>(env, std::move(result_.cumNeighborPerLevel)));
    Napi::Object stages = Napi::Object::New(env);
    for (auto& [name, seconds] : result_.stageSeconds) stages.Set(name, seconds);
    out.Set("stageSeconds", stages);
    out.Set("peakDeviceBytes", Napi::Number::New(env, static_cast<double>(result_.peakDeviceBytes)));
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string builder_;
  BuildOptions options_;
  std::vector<Napi::Reference<Napi::Value>> keepAlive_;
  Napi::FunctionReference onProgress_;
  GraphResult result_;
};

// build(builder: 'cpu' | 'gpu', options, onProgress?) -> Promise<NativeGraph>
Napi::Value Build(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject())
    throw Napi::TypeError::New(env, "build(builder, options, onProgress?)");
  std::string builder = info[0].As<Napi::String>().Utf8Value();
  if (builder != "cpu" && builder != "gpu") throw Napi::TypeError::New(env, "builder must be 'cpu' or 'gpu'");
  std::vector<Napi::Reference<Napi::Value>> keepAlive;
  BuildOptions options = parseOptions(info[1].As<Napi::Object>(), keepAlive);
  Napi::Function onProgress = info.Length() > 2 && info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
  auto* worker = new BuildWorker(env, builder, std::move(options), std::move(keepAlive), onProgress);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// plannedLayout(builder, options) -> { M, levels, assignProbas, cumNeighborPerLevel }: the shape build() would
// return for the same options, without building (host code; the GPU one works without a GPU).
Napi::Value PlannedLayout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject())
    throw Napi::TypeError::New(env, "plannedLayout(builder, options)");
  std::string builder = info[0].As<Napi::String>().Utf8Value();
  if (builder != "cpu" && builder != "gpu") throw Napi::TypeError::New(env, "builder must be 'cpu' or 'gpu'");
  std::vector<Napi::Reference<Napi::Value>> keepAlive;
  const BuildOptions options = parseOptions(info[1].As<Napi::Object>(), keepAlive, /*shapeOnly=*/true);
  if (options.m < 2) throw Napi::RangeError::New(env, "options.m must be at least 2");
  knn::GraphLayout layout = builder == "gpu" ? knn::plannedLayoutGpu(options) : knn::plannedLayoutCpu(options);
  Napi::Object out = Napi::Object::New(env);
  out.Set("M", layout.M);
  out.Set("levels", toTypedArray<int32_t, Napi::Int32Array>(env, std::move(layout.levels)));
  out.Set("assignProbas", toTypedArray<double, Napi::Float64Array>(env, std::move(layout.assignProbas)));
  out.Set("cumNeighborPerLevel",
          toTypedArray<int32_t, Napi::Int32Array>(env, std::move(layout.cumNeighborPerLevel)));
  return out;
}

// gpuInfo(device?) -> { compiled, deviceCount, name, totalBytes, freeBytes, computeCapability, error }
Napi::Value GpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int device = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  knn::GpuInfo g;
  try {
    g = knn::gpuInfo(device);
  } catch (const std::exception& e) {
    g.error = e.what();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("compiled", g.compiled);
  out.Set("deviceCount", g.deviceCount);
  out.Set("name", g.name);
  out.Set("totalBytes", Napi::Number::New(env, static_cast<double>(g.totalBytes)));
  out.Set("freeBytes", Napi::Number::New(env, static_cast<double>(g.freeBytes)));
  out.Set("computeCapability", std::to_string(g.computeMajor) + "." + std::to_string(g.computeMinor));
  out.Set("error", g.error.empty() ? env.Null() : Napi::String::New(env, g.error));
  return out;
}

// gpuWarmUp(device) -> Promise<seconds>: creates the device's CUDA context, cuBLAS handle and pinned staging
// buffers for this process (off the JS thread; they are kept for every later build on the device). Rejects
// with an Error naming the problem when the device cannot be used.
class WarmUpWorker : public Napi::AsyncWorker {
 public:
  WarmUpWorker(Napi::Env env, int device)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), device_(device) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      seconds_ = knn::gpuWarmUp(device_);
    } catch (const std::exception& e) {
      SetError("GPU " + std::to_string(device_) + " warm-up failed: " + e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), seconds_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int device_;
  double seconds_ = 0;
};

Napi::Value GpuWarmUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "gpuWarmUp(device)");
  auto* worker = new WarmUpWorker(env, info[0].As<Napi::Number>().Int32Value());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// exitWithParent(parentPid, graceMs): a build worker must not outlive the service that started it. A detached
// thread checks the parent every 100 ms; once it is gone (the worker was re-parented), it gives the JS side
// graceMs to abort uploads and remove temp files, then ends the process with _exit. A thread of its own, so it
// also works while the JS thread is busy and while a native build holds the libuv pool (where process.exit would
// wait for it). Returns false, starting nothing, when the parent is already gone.
Napi::Value ExitWithParent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "exitWithParent(parentPid, graceMs)");
  const pid_t parent = static_cast<pid_t>(info[0].As<Napi::Number>().Int32Value());
  const int64_t graceMs = info[1].As<Napi::Number>().Int64Value();
  if (getppid() != parent) return Napi::Boolean::New(env, false);
  std::thread([parent, graceMs] {
    while (getppid() == parent) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::this_thread::sleep_for(std::chrono::milliseconds(graceMs));
    _exit(70);  // EX_SOFTWARE: nobody is left to read it
  }).detach();
  return Napi::Boolean::New(env, true);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("copyFileRange", Napi::Function::New(env, knn::io::CopyFileRange));
  exports.Set("readFileRange", Napi::Function::New(env, knn::io::ReadFileRange));
  exports.Set("f32ToF16", Napi::Function::New(env, knn::convert::F32ToF16));
  exports.Set("int8Codes", Napi::Function::New(env, knn::convert::Int8Codes));
  exports.Set("findFloat32AtLeast", Napi::Function::New(env, knn::convert::FindFloat32AtLeast));
  exports.Set("findNonFiniteFloat16", Napi::Function::New(env, knn::convert::FindNonFiniteFloat16));
  exports.Set("exitWithParent", Napi::Function::New(env, ExitWithParent));
  exports.Set("build", Napi::Function::New(env, Build));
  exports.Set("gpuInfo", Napi::Function::New(env, GpuInfo));
  exports.Set("gpuWarmUp", Napi::Function::New(env, GpuWarmUp));
  exports.Set("plannedLayout", Napi::Function::New(env, PlannedLayout));
  exports.Set("withGpu", Napi::Boolean::New(env, KNN_WITH_GPU != 0));
  return exports;
}

}  // namespace

NODE_API_MODULE(knn_native, Init)
