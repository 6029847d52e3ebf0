/*
 * curl_dl.c: loads libcurl once per process (curl_dl.h says why). The one
 * piece of process-wide state in the checks: a dlopen()ed library and
 * curl_global_init() are process-wide by nature, and every checker of
 * every node in the process shares them. Written once, under
 * pthread_once(); read through an atomic pointer afterwards.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "curl_dl.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *soname = LM__CURL_SONAME;
static atomic_int tried;
static lm__curl_t fns;
static _Atomic(const lm__curl_t *) loaded;
static _Atomic(const char *) failed;
static char why[512];

static void fail(const char *fmt, const char *a, const char *b) {
  snprintf(why, sizeof why, fmt, a, b);
  atomic_store_explicit(&failed, why, memory_order_release);
}

static void load_once(void) {
  atomic_store(&tried, 1);
  void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    const char *e = dlerror();
    fail("%s not found (install libcurl4): %s", soname, e ? e : "?");
    return;
  }
  /* A missing symbol means an older libcurl than the headers we were
   * built with: say which, and keep the library (dlclose of a library
   * that may have started threads or atexit handlers is not worth it). */
#define LOAD(n)                                                                \
  if ((fns.n = (__typeof__(fns.n))dlsym(h, "curl_" #n)) == NULL) {             \
    fail("%s has no curl_%s (libcurl older than " LIBCURL_VERSION "?)",        \
         soname, #n);                                                          \
    return;                                                                    \
  }
  LM__CURL_FUNCS(LOAD)
#undef LOAD
  CURLcode rc = fns.global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) {
    fail("%s: curl_global_init failed: %s", soname, fns.easy_strerror(rc));
    return;
  }
  atomic_store_explicit(&loaded, &fns, memory_order_release);
}

const lm__curl_t *lm__curl_load(void) {
  const lm__curl_t *cu = atomic_load_explicit(&loaded, memory_order_acquire);
  if (cu != NULL)
    return cu;
  pthread_once(&once, load_once);
  return atomic_load_explicit(&loaded, memory_order_acquire);
}

const lm__curl_t *lm__curl_loaded(void) {
  return atomic_load_explicit(&loaded, memory_order_acquire);
}

const char *lm__curl_error(void) {
  return atomic_load_explicit(&failed, memory_order_acquire);
}

int lm__curl_use_soname_for_test(const char *name) {
  if (atomic_load(&tried) || name == NULL)
    return -1;
  soname = name;
  return 0;
}
