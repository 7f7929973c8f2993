/* Arrow C data and C stream interface structs (ABI-stable, from the Arrow specification). */
#ifndef MATCHCORE_ARROW_C_ABI_H
#define MATCHCORE_ARROW_C_ABI_H
#include <stdint.h>

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE
#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
  const char* format;
  const char* name;
  const char* metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema** children;
  struct ArrowSchema* dictionary;
  void (*release)(struct ArrowSchema*);
  void* private_data;
};

struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void** buffers;
  struct ArrowArray** children;
  struct ArrowArray* dictionary;
  void (*release)(struct ArrowArray*);
  void* private_data;
};
#endif

#ifndef ARROW_C_STREAM_INTERFACE
#define ARROW_C_STREAM_INTERFACE
struct ArrowArrayStream {
  int (*get_schema)(struct ArrowArrayStream*, struct ArrowSchema* out);
  int (*get_next)(struct ArrowArrayStream*, struct ArrowArray* out);
  const char* (*get_last_error)(struct ArrowArrayStream*);
  void (*release)(struct ArrowArrayStream*);
  void* private_data;
};
#endif

/* Release helpers: Cython cannot call a function pointer member directly on a const struct. */
static inline void mc_release_schema(struct ArrowSchema* s) { if (s->release) s->release(s); }
static inline void mc_release_array(struct ArrowArray* a) { if (a->release) a->release(a); }
static inline void mc_release_stream(struct ArrowArrayStream* s) { if (s->release) s->release(s); }
static inline int mc_stream_schema(struct ArrowArrayStream* s, struct ArrowSchema* out) {
  return s->get_schema(s, out);
}
static inline int mc_stream_next(struct ArrowArrayStream* s, struct ArrowArray* out) {
  return s->get_next(s, out);
}
#endif
