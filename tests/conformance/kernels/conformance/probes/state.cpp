// Per-library state. A twin kernel built from the same sources under another name has the same
// C++ symbols for all four counters; loaded into one process, each library must keep its own.
// The inline function's static, the inline class static and the template static have vague
// linkage: GCC would make them STB_GNU_UNIQUE (one copy per process) without -fno-gnu-unique,
// and any of them could bind to the other library's copy if they were exported.
#include <cstdint>
#include <tuple>

#include "probes.h"

namespace conformance {

int64_t global_counter = 0;  // a plain global (namespace scope, external linkage)

inline int64_t& local_static_counter() {
  static int64_t count = 0;  // a function-local static
  return count;
}

struct ClassCounter {
  static inline int64_t count = 0;  // a class static
};

template <typename T>
struct TemplateCounter {
  static int64_t count;  // a static data member of a class template
};
template <typename T>
int64_t TemplateCounter<T>::count = 0;

std::tuple<int64_t, int64_t, int64_t, int64_t> bump() {
  return {++global_counter, ++local_static_counter(), ++ClassCounter::count, ++TemplateCounter<int64_t>::count};
}

}  // namespace conformance
