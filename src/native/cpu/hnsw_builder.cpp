// HNSW construction as Faiss's IndexHNSW does it (same level draw, insertion by level from the top, search at
// ef_construction, Faiss's neighbour-selection heuristic, reverse links re-pruned when full), engineered for speed:
//   * the graph is written in place in Faiss's layout (no copy, no conversion at the end);
//   * striped mutexes, taken only to write a node's list; lists are read without locks
//     (relaxed atomic loads: a reader may see a list mid-rewrite, every entry is still a valid id or -1);
//   * a visited table per thread with a generation counter (cleared once every 255 searches);
//   * unvisited neighbours are collected first, their vectors prefetched, then scored four at a time
//     (query4 kernels: each query load feeds four FMA chains);
//   * nodes of one level are inserted in parallel (OpenMP, dynamic schedule, no barrier inside a level); the
//     build's own thread reports progress about every 1%; the cancel flag is read before every insertion, so a
//     cancel takes effect within one insertion per thread (well under a millisecond) and ends in BuildCancelled.
#include "hnsw_builder.h"

#include "../layout/levels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "distance_kernels.h"
#include "vector_table.h"

namespace knn::cpu {

namespace {

struct Neighbor {
  float distance;
  int32_t id;
};

// Orders by distance, then id, so that ties (common with hamming) resolve the same way on every run.
inline bool nearer(const Neighbor& a, const Neighbor& b) {
  return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
}
struct Farther {  // max-heap of results: the farthest on top
  bool operator()(const Neighbor& a, const Neighbor& b) const { return nearer(a, b); }
};
struct Closer {  // min-heap of candidates: the nearest on top
  bool operator()(const Neighbor& a, const Neighbor& b) const { return nearer(b, a); }
};

inline int32_t loadId(const int32_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
inline void storeId(int32_t* p, int32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

inline void prefetch(const void* p, std::size_t bytes) {
  const auto* c = static_cast<const char*>(p);
  // The first cache lines; the hardware prefetcher follows a sequential read from there.
  for (std::size_t i = 0; i < bytes && i < 256; i += 64) __builtin_prefetch(c + i);
}

// Locks for the nodes' link lists, striped: node i takes mutex i % 4096 (fewer for small sets). A thread holds
// one at a time, only to rewrite one short list, so with up to 64 threads two rarely meet on a stripe; and a
// waiter sleeps in the kernel (futex) instead of spinning when a holder is preempted on a busy machine.
class NodeLocks {
 public:
  explicit NodeLocks(int64_t n)
      : count_(static_cast<uint32_t>(std::min<int64_t>(n, 4096))), stripes_(new std::mutex[count_]) {}
  void lock(int32_t i) { stripes_[static_cast<uint32_t>(i) % count_].lock(); }
  void unlock(int32_t i) { stripes_[static_cast<uint32_t>(i) % count_].unlock(); }

 private:
  uint32_t count_;
  std::unique_ptr<std::mutex[]> stripes_;
};

using levels::Random;

// Levels and link slots. While building, level 0 is dense (node i's 2M slots at neighbors[i * 2M], no offset
// lookup on the hot path: one cache miss less per visited node) and the upper levels live in `upper`. finish()
// then rearranges `neighbors` in place into Faiss's layout: node i's links at level l at
// offsets[i] + cum[l] .. offsets[i] + cum[l + 1], -1 padded, where offsets[i] = i * 2M + upperStart[i].
struct Layout {
  std::vector<double> assignProbas;
  std::vector<int32_t> cum;  // cum_nneighbor_per_level: [0, 2M, 3M, ...]
  std::vector<int32_t> levels;  // per node: top level + 1
  std::vector<int32_t> neighbors;
  std::vector<int32_t> upper;
  std::vector<std::size_t> upperStart;  // per node, + one past the end
  std::size_t slots0;

  Layout(int m, int64_t n, bool hierarchical, Random& random) : slots0(2 * static_cast<std::size_t>(m)) {
    // Faiss's HNSW::set_default_probas(M, 1 / ln M) and random_level(), so levels follow Faiss's distribution;
    // the same functions as plannedLayoutCpu (layout/levels.h), so the planned file layout is the built one.
    knn::levels::cpuLevelTables(m, assignProbas, cum);
    const auto count = static_cast<std::size_t>(n);
    levels.resize(count);
    upperStart.resize(count + 1, 0);
    for (std::size_t i = 0; i < count; i++) {
      const int top = drawLevel(random.uniform());
      levels[i] = top + 1;
      upperStart[i + 1] = upperStart[i] + static_cast<std::size_t>(cum[top + 1] - cum[1]);
    }
    upper.assign(upperStart.back(), -1);
    // The final array from the start (base level only: just level 0), so finish() allocates nothing.
    neighbors.assign(count * slots0 + (hierarchical ? upper.size() : 0), -1);
  }

  int drawLevel(double f) const { return knn::levels::cpuDrawLevel(assignProbas, f); }

  int top(int32_t i) const { return levels[static_cast<std::size_t>(i)] - 1; }
  int capacity(int level) const { return cum[level + 1] - cum[level]; }
  int32_t* links(int32_t i, int level) {
    const auto node = static_cast<std::size_t>(i);
    if (level == 0) return neighbors.data() + node * slots0;
    return upper.data() + upperStart[node] + static_cast<std::size_t>(cum[level] - cum[1]);
  }

  // Faiss's layout, in place: level-0 blocks move to their offsets from the last node down (offsets[i] >= i * 2M,
  // so a block never lands on one not yet moved), then each node's upper levels follow its level 0.
  void finish(bool hierarchical) {
    if (!hierarchical) return;
    const std::size_t n = levels.size();
    for (std::size_t i = n; i-- > 0;) {
      const std::size_t offset = i * slots0 + upperStart[i];
      if (offset != i * slots0) std::copy_backward(neighbors.begin() + i * slots0, neighbors.begin() + (i + 1) * slots0,
                                                   neighbors.begin() + offset + slots0);
      std::copy(upper.begin() + upperStart[i], upper.begin() + upperStart[i + 1], neighbors.begin() + offset + slots0);
    }
    std::vector<int32_t>().swap(upper);
  }
};

Element elementOf(DataType t) {
  return t == DataType::Float16 ? Element::Float16 : t == DataType::Int8 ? Element::Int8 : Element::Float32;
}

// Float, half_float and byte vectors on their exact float values; inner product as its negation, so that
// smaller is nearer everywhere (as Faiss's NegativeDistanceComputer).
class FloatSpace {
 public:
  struct Query {
    const float* values = nullptr;
    std::vector<float> buffer;  // fp16 / int8 queries widened to float
  };

  FloatSpace(const BuildOptions& o, const VectorTable& vectors)
      : vectors_(vectors),
        type_(o.dataType),
        d_(static_cast<std::size_t>(o.dimension)),
        sign_(o.metric == Metric::InnerProduct ? -1.0f : 1.0f),
        kernels_(kernelsFor(elementOf(o.dataType), o.metric == Metric::InnerProduct, o.portableKernels)) {}

  void setQuery(Query& q, int32_t i) const {
    const uint8_t* v = vectors_.at(i);
    if (type_ == DataType::Float32) {
      q.values = reinterpret_cast<const float*>(v);
      return;
    }
    q.buffer.resize(d_);
    kernels_.widen(v, d_, q.buffer.data());
    q.values = q.buffer.data();
  }
  float toQuery(const Query& q, int32_t i) const { return sign_ * kernels_.query(q.values, vectors_.at(i), d_); }
  void toQuery4(const Query& q, const int32_t* ids, float* out) const {
    const void* v[4] = {vectors_.at(ids[0]), vectors_.at(ids[1]), vectors_.at(ids[2]), vectors_.at(ids[3])};
    kernels_.query4(q.values, v, d_, out);
    for (int k = 0; k < 4; k++) out[k] *= sign_;
  }
  void prefetchVector(int32_t i) const { prefetch(vectors_.at(i), vectors_.bytes()); }

 private:
  const VectorTable& vectors_;
  DataType type_;
  std::size_t d_;
  float sign_;
  Kernels kernels_;
};

// Packed bits with hamming distance (as Faiss's IndexBinaryHNSW).
class BitSpace {
 public:
  struct Query {
    const uint8_t* code = nullptr;
  };

  BitSpace(const BuildOptions& o, const VectorTable& vectors)
      : vectors_(vectors), hamming_(hammingFor(o.portableKernels)) {}

  void setQuery(Query& q, int32_t i) const { q.code = vectors_.at(i); }
  float toQuery(const Query& q, int32_t i) const { return hamming_.one(q.code, vectors_.at(i), vectors_.bytes()); }
  void toQuery4(const Query& q, const int32_t* ids, float* out) const {
    const void* c[4] = {vectors_.at(ids[0]), vectors_.at(ids[1]), vectors_.at(ids[2]), vectors_.at(ids[3])};
    hamming_.four(q.code, c, vectors_.bytes(), out);
  }
  void prefetchVector(int32_t i) const { prefetch(vectors_.at(i), vectors_.bytes()); }

 private:
  const VectorTable& vectors_;
  HammingKernels hamming_;
};

template <class Space>
class Builder {
 public:
  Builder(const BuildOptions& o, const Space& space, Layout& layout, int threads)
      : o_(o), space_(space), layout_(layout), locks_(o.count), scratch_(static_cast<std::size_t>(threads)),
        threads_(threads) {}

  void run(const std::vector<int32_t>& order, const ProgressFn& progress) {
    const int64_t n = static_cast<int64_t>(order.size());
    entry_ = order[0];
    maxLevel_ = layout_.top(entry_);
    progress_ = &progress;
    total_ = n;
    inserted_ = 1;  // the entry point needs no links
    nextReport_ = std::max<int64_t>(1, n / 100);
    if (progress) progress(0.0, "add");
    // One parallel loop per level, as Faiss: nodes of a level link only once every higher node is in. No
    // barrier inside a level (a preempted thread on a busy machine holds up nobody but itself).
    for (int64_t begin = 1; begin < n;) {
      const int level = layout_.top(order[static_cast<std::size_t>(begin)]);
      int64_t end = begin;
      while (end < n && layout_.top(order[static_cast<std::size_t>(end)]) == level) end++;
      insertAll(order.data() + begin, end - begin);
      if (cancelRequested(o_)) throw BuildCancelled();
      begin = end;
    }
    report();
  }

 private:
  struct Scratch {
    typename Space::Query query;
    typename Space::Query pairQuery;  // the heuristic's side: a candidate against the kept links
    std::vector<uint8_t> visited;
    uint8_t generation = 0;
    std::vector<Neighbor> candidates, results, entries, selected, pool;
    std::vector<int32_t> fresh, keptIds;
    std::vector<float> distances;
  };

  // Progress (stage "add": the fraction of vectors inserted), about every 1%. Called only on the build's own
  // thread (OpenMP thread 0), which is the one the caller's callback expects.
  void report() {
    const int64_t done = __atomic_load_n(&inserted_, __ATOMIC_RELAXED);
    if (!*progress_ || (done < nextReport_ && done < total_)) return;
    (*progress_)(static_cast<double>(done) / static_cast<double>(total_), "add");
    nextReport_ = done + std::max<int64_t>(1, total_ / 100);
  }

  void insertAll(const int32_t* nodes, int64_t count) {
    std::exception_ptr failure;
    bool failed = false;
    const int threads = static_cast<int>(std::min<int64_t>(threads_, count));
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
    for (int64_t i = 0; i < count; i++) {
      // The cancel flag is read before every insertion, so a cancel lands within one insertion per thread.
      if (cancelRequested(o_) || __atomic_load_n(&failed, __ATOMIC_RELAXED)) continue;
      const int thread = omp_get_thread_num();
      try {
        insert(nodes[i], scratch_[static_cast<std::size_t>(thread)]);
        __atomic_add_fetch(&inserted_, 1, __ATOMIC_RELAXED);
        if (thread == 0) report();
      } catch (...) {
#pragma omp critical(knn_hnsw_failure)
        if (!failed) {
          failure = std::current_exception();
          __atomic_store_n(&failed, true, __ATOMIC_RELAXED);
        }
      }
    }
    if (failure) std::rethrow_exception(failure);
  }

  void insert(int32_t node, Scratch& s) {
    space_.setQuery(s.query, node);
    const int top = layout_.top(node);
    Neighbor nearest{space_.toQuery(s.query, entry_), entry_};
    for (int level = maxLevel_; level > top; level--) greedy(s, nearest, level);
    s.entries.assign(1, nearest);
    for (int level = std::min(top, maxLevel_); level >= 0; level--) {
      search(s, node, level);
      select(s.results, s.selected, layout_.capacity(level), s);
      setLinks(node, level, level == 0 ? withPruned(s) : s.selected);
      for (const Neighbor& nb : s.selected) addLink(nb.id, node, nb.distance, level, s);
      s.entries.swap(s.results);  // the next level starts from every node found on this one
    }
  }

  // Copies node i's links at `level` (read without a lock) into out; returns how many.
  int readLinks(int32_t i, int level, int32_t* out) {
    const int32_t* links = layout_.links(i, level);
    const int cap = layout_.capacity(level);
    int k = 0;
    for (; k < cap; k++) {
      const int32_t v = loadId(links + k);
      if (v < 0) break;
      out[k] = v;
    }
    return k;
  }

  // Scores s.fresh (ids already marked visited) into s.distances, four at a time after prefetching them all.
  void score(Scratch& s) {
    const std::size_t k = s.fresh.size();
    s.distances.resize(k);
    for (std::size_t j = 0; j < k; j++) space_.prefetchVector(s.fresh[j]);
    scoreFrom(s.query, s.fresh.data(), static_cast<int>(k), s.distances.data());
  }

  // Greedy descent on an upper level (ef = 1), as Faiss's greedy_update_nearest.
  void greedy(Scratch& s, Neighbor& nearest, int level) {
    for (bool moved = true; moved;) {
      moved = false;
      s.fresh.resize(static_cast<std::size_t>(layout_.capacity(level)));
      s.fresh.resize(static_cast<std::size_t>(readLinks(nearest.id, level, s.fresh.data())));
      score(s);
      for (std::size_t j = 0; j < s.fresh.size(); j++) {
        const Neighbor c{s.distances[j], s.fresh[j]};
        if (nearer(c, nearest)) {
          nearest = c;
          moved = true;
        }
      }
    }
  }

  void newGeneration(Scratch& s) {
    if (s.visited.empty()) s.visited.assign(static_cast<std::size_t>(o_.count), 0);
    if (++s.generation == 0) {
      std::fill(s.visited.begin(), s.visited.end(), 0);
      s.generation = 1;
    }
  }

  // A node found: a candidate to expand, and a result (the farthest result leaves when there are more than ef).
  static void admit(Scratch& s, const Neighbor& nb, std::size_t ef) {
    s.candidates.push_back(nb);
    std::push_heap(s.candidates.begin(), s.candidates.end(), Closer());
    s.results.push_back(nb);
    std::push_heap(s.results.begin(), s.results.end(), Farther());
    if (s.results.size() > ef) {
      std::pop_heap(s.results.begin(), s.results.end(), Farther());
      s.results.pop_back();
    }
  }

  // Best-first search of `level` from s.entries with ef_construction; s.results sorted nearest first.
  void search(Scratch& s, int32_t node, int level) {
    const std::size_t ef = static_cast<std::size_t>(o_.efConstruction);
    newGeneration(s);
    uint8_t* visited = s.visited.data();
    const uint8_t gen = s.generation;
    auto& cand = s.candidates;
    auto& res = s.results;
    cand.clear();
    res.clear();
    visited[node] = gen;  // never link a node to itself
    for (const Neighbor& e : s.entries) {
      if (visited[e.id] == gen) continue;
      visited[e.id] = gen;
      admit(s, e, ef);
    }
    const std::size_t cap = static_cast<std::size_t>(layout_.capacity(level));
    while (!cand.empty()) {
      const Neighbor c = cand.front();
      if (res.size() >= ef && res.front().distance < c.distance) break;
      std::pop_heap(cand.begin(), cand.end(), Closer());
      cand.pop_back();
      // The next candidate's list is likely read next: fetch it while this one's neighbours are scored.
      if (!cand.empty()) __builtin_prefetch(layout_.links(cand.front().id, level));
      s.fresh.resize(cap);
      const int k = readLinks(c.id, level, s.fresh.data());
      std::size_t kept = 0;
      for (int j = 0; j < k; j++) {
        const int32_t v = s.fresh[static_cast<std::size_t>(j)];
        if (visited[v] == gen) continue;
        visited[v] = gen;
        s.fresh[kept++] = v;
      }
      s.fresh.resize(kept);
      score(s);
      for (std::size_t j = 0; j < kept; j++) {
        const Neighbor nb{s.distances[j], s.fresh[j]};
        if (res.size() < ef || nearer(nb, res.front())) admit(s, nb, ef);
      }
    }
    std::sort_heap(res.begin(), res.end(), Farther());  // ascending: nearest first
  }

  // Faiss's shrink_neighbor_list (the HNSW paper's heuristic): from candidates sorted nearest first, keep c
  // unless a kept r is nearer to c than the query is. Fewer candidates than slots are all kept.
  void select(const std::vector<Neighbor>& sorted, std::vector<Neighbor>& out, int slots, Scratch& s) {
    out = sorted;
    if (out.size() >= static_cast<std::size_t>(slots)) shrink(out, slots, s);
  }

  // The new node's own level-0 list: the heuristic's choice, then the nearest candidates it pruned, up to 2M
  // slots (Faiss's keep_max_size_level0, for this list only; reverse links go to the chosen ones alone). Free
  // slots cost nothing to fill, and the extra short edges lift recall at the same ef_search (measured at
  // 100k x 128: 0.9998 against 0.9988 without, at the same build time).
  const std::vector<Neighbor>& withPruned(Scratch& s) {
    const auto slots = static_cast<std::size_t>(layout_.capacity(0));
    if (s.selected.size() >= slots || s.selected.size() == s.results.size()) return s.selected;
    s.pool = s.selected;
    std::size_t next = 0;  // s.selected is a subsequence of s.results (both nearest first)
    for (const Neighbor& c : s.results) {
      if (s.pool.size() >= slots) break;
      if (next < s.selected.size() && s.selected[next].id == c.id) {
        next++;
      } else {
        s.pool.push_back(c);
      }
    }
    return s.pool;
  }

  void setLinks(int32_t node, int level, const std::vector<Neighbor>& chosen) {
    int32_t* links = layout_.links(node, level);
    const int cap = layout_.capacity(level);
    locks_.lock(node);
    for (int k = 0; k < cap; k++) storeId(links + k, k < static_cast<int>(chosen.size()) ? chosen[k].id : -1);
    locks_.unlock(node);
  }

  // Adds the reverse link src -> dst (distance known); a full list is re-pruned by the same heuristic, as
  // Faiss's add_link.
  void addLink(int32_t src, int32_t dst, float distance, int level, Scratch& s) {
    int32_t* links = layout_.links(src, level);
    const int cap = layout_.capacity(level);
    locks_.lock(src);
    int used = 0;
    for (; used < cap && links[used] >= 0; used++) {
      if (links[used] == dst) {
        locks_.unlock(src);
        return;
      }
    }
    if (used < cap) {
      storeId(links + used, dst);
      locks_.unlock(src);
      return;
    }
    auto& pool = s.pool;
    s.fresh.assign(links, links + cap);
    space_.setQuery(s.pairQuery, src);
    s.distances.resize(static_cast<std::size_t>(cap));
    scoreFrom(s.pairQuery, s.fresh.data(), cap, s.distances.data());
    pool.clear();
    pool.push_back({distance, dst});
    for (int k = 0; k < cap; k++) pool.push_back({s.distances[static_cast<std::size_t>(k)], links[k]});
    std::sort(pool.begin(), pool.end(), nearer);
    shrink(pool, cap, s);
    for (int k = 0; k < cap; k++) storeId(links + k, k < static_cast<int>(pool.size()) ? pool[k].id : -1);
    locks_.unlock(src);
  }

  // distances from query q to ids[0..count), four at a time.
  void scoreFrom(const typename Space::Query& q, const int32_t* ids, int count, float* out) {
    int j = 0;
    for (; j + 4 <= count; j += 4) space_.toQuery4(q, ids + j, out + j);
    for (; j < count; j++) out[j] = space_.toQuery(q, ids[j]);
  }

  // The heuristic in place: keeps its choice (at most `slots`) at the front of `pool` and drops the rest.
  // Each candidate is compared with the kept ones four at a time (it is the query of the 4-wide kernel).
  void shrink(std::vector<Neighbor>& pool, int slots, Scratch& s) {
    auto& keptIds = s.keptIds;
    keptIds.clear();
    float d4[4];
    for (std::size_t i = 0; i < pool.size() && keptIds.size() < static_cast<std::size_t>(slots); i++) {
      const Neighbor c = pool[i];
      space_.setQuery(s.pairQuery, c.id);
      const int kept = static_cast<int>(keptIds.size());
      bool keep = true;
      int r = 0;
      for (; keep && r + 4 <= kept; r += 4) {
        space_.toQuery4(s.pairQuery, keptIds.data() + r, d4);
        keep = d4[0] >= c.distance && d4[1] >= c.distance && d4[2] >= c.distance && d4[3] >= c.distance;
      }
      for (; keep && r < kept; r++) {
        keep = space_.toQuery(s.pairQuery, keptIds[static_cast<std::size_t>(r)]) >= c.distance;
      }
      if (keep) {
        pool[keptIds.size()] = c;
        keptIds.push_back(c.id);
      }
    }
    pool.resize(keptIds.size());
  }

  const BuildOptions& o_;
  const Space& space_;
  Layout& layout_;
  NodeLocks locks_;
  std::vector<Scratch> scratch_;
  int threads_;
  int32_t entry_ = -1;
  int maxLevel_ = -1;
  const ProgressFn* progress_ = nullptr;
  int64_t total_ = 0;
  int64_t inserted_ = 0;    // atomic: insertions done
  int64_t nextReport_ = 0;  // thread 0 only
};

// Insertion order: by top level, highest first (as Faiss), shuffled within a level so that neighbouring ids
// (often neighbouring vectors) are not inserted back to back.
std::vector<int32_t> insertionOrder(const Layout& layout, Random& random) {
  const int levels = static_cast<int>(layout.assignProbas.size());
  std::vector<int64_t> start(static_cast<std::size_t>(levels) + 1, 0);
  for (int32_t top1 : layout.levels) start[static_cast<std::size_t>(levels - top1 + 1)]++;
  for (int l = 0; l < levels; l++) start[static_cast<std::size_t>(l) + 1] += start[static_cast<std::size_t>(l)];
  std::vector<int32_t> order(layout.levels.size());
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (std::size_t i = 0; i < layout.levels.size(); i++) {
    const int slot = levels - layout.levels[i];  // top level levels-1 goes first
    order[static_cast<std::size_t>(fill[static_cast<std::size_t>(slot)]++)] = static_cast<int32_t>(i);
  }
  for (int l = 0; l < levels; l++) {
    const int64_t a = start[static_cast<std::size_t>(l)], b = start[static_cast<std::size_t>(l) + 1];
    for (int64_t i = b - 1; i > a; i--) {
      const int64_t j = a + static_cast<int64_t>(random.below(static_cast<uint64_t>(i - a + 1)));
      std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
    }
  }
  return order;
}

template <class Space>
GraphResult build(const BuildOptions& o, const Space& space, const ProgressFn& progress) {
  Random random(o.seed);
  Layout layout(o.m, o.count, o.hierarchical, random);
  const std::vector<int32_t> order = insertionOrder(layout, random);
  const int threads = o.threads > 0 ? o.threads : omp_get_num_procs();
  {
    Builder<Space> builder(o, space, layout, threads);
    builder.run(order, progress);
  }
  layout.finish(o.hierarchical);
  GraphResult g;
  g.M = o.m;
  g.neighbors = std::move(layout.neighbors);
  g.assignProbas = std::move(layout.assignProbas);
  g.cumNeighborPerLevel = std::move(layout.cum);
  if (o.hierarchical) {
    g.entryPoint = order[0];
    g.maxLevel = layout.top(order[0]);
    g.levels = std::move(layout.levels);
  }  // base level only: every node on level 1, no entry point (-1), as an IHNc / IHc2 file wants
  return g;
}

}  // namespace

GraphResult buildHnsw(const BuildOptions& o, const ProgressFn& progress) {
  const VectorTable vectors(o);
  if (o.dataType == DataType::Binary) return build(o, BitSpace(o, vectors), progress);
  return build(o, FloatSpace(o, vectors), progress);
}

}  // namespace knn::cpu
