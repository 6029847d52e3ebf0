/*
 * curl_dl.h: libcurl, loaded with dlopen() the first time something needs
 * it. Only HTTP checks (check_http.c, and check.c's URL validation), the
 * agent's environ report once libcurl is in use and the bench's --http mode
 * call libcurl; a process that does none of these never maps libcurl nor
 * the TLS, Kerberos, LDAP and SSH libraries it pulls in (about 7 MiB of
 * resident pages). <curl/curl.h> is still used at build time, for the
 * types and constants; nothing links -lcurl.
 *
 * The loaded library is process-wide, like curl_global_init(): it is
 * loaded once (thread-safe), curl_global_init() is called once right
 * after, and it is never unloaded. A failure is also final: every later
 * call gets the same error, so an HTTP check reports it on every run.
 *
 * Must never depend on anything but libc, libdl and the curl headers.
 */
#ifndef LIVEMESH_MESH_CURL_DL_H
#define LIVEMESH_MESH_CURL_DL_H

#include <curl/curl.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The soname loaded: Debian's libcurl4 (any TLS flavour) provides it. */
#define LM__CURL_SONAME "libcurl.so.4"

/* Every libcurl function the tree calls, by its name without "curl_". */
#define LM__CURL_FUNCS(X)                                                      \
  X(global_init)                                                               \
  X(version_info)                                                              \
  X(free)                                                                      \
  X(easy_init)                                                                 \
  X(easy_setopt)                                                               \
  X(easy_getinfo)                                                              \
  X(easy_perform)                                                              \
  X(easy_strerror)                                                             \
  X(easy_cleanup)                                                              \
  X(multi_init)                                                                \
  X(multi_setopt)                                                              \
  X(multi_add_handle)                                                          \
  X(multi_remove_handle)                                                       \
  X(multi_socket_action)                                                       \
  X(multi_assign)                                                              \
  X(multi_info_read)                                                           \
  X(multi_cleanup)                                                             \
  X(url)                                                                       \
  X(url_set)                                                                   \
  X(url_get)                                                                   \
  X(url_strerror)                                                              \
  X(url_cleanup)

/* The functions, each with its prototype from <curl/curl.h>:
 * cu->easy_setopt(e, CURLOPT_URL, url) calls curl_easy_setopt. */
#define LM__CURL_MEMBER(n) __typeof__(curl_##n) *n;
typedef struct lm__curl {
  LM__CURL_FUNCS(LM__CURL_MEMBER)
} lm__curl_t;
#undef LM__CURL_MEMBER

/* Loads libcurl on the first call (later calls return at once) and returns
 * its functions, or NULL when it cannot be loaded: lm__curl_error() then
 * says why. Safe from any thread. */
const lm__curl_t *lm__curl_load(void);

/* The functions if libcurl is loaded already, else NULL: never loads. For
 * reports that must not pull the library in (the agent's environ). */
const lm__curl_t *lm__curl_loaded(void);

/* Why loading failed ("libcurl.so.4 not found (install libcurl4): ..."),
 * or NULL when it has not failed (loaded, or not tried yet). */
const char *lm__curl_error(void);

/* Tests only: load `soname` instead of LM__CURL_SONAME, to see the path
 * where libcurl is missing for real (a name no file has). Must be called
 * before anything in the process loads libcurl; -1 if too late. */
int lm__curl_use_soname_for_test(const char *soname);

#ifdef __cplusplus
}
#endif
#endif
