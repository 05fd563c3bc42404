/*
 * Flotilla agent: gives the C heap's free pages back to the system.
 *
 * glibc's malloc returns freed memory to the system only from the top of its heap; the
 * pages of free chunks below a live one stay resident. After a reconcile burst (sixteen
 * TLS connections, thousands of HTTP buffers) that is several megabytes an idle agent
 * would hold for nothing. malloc_trim(0) releases every whole free page, wherever it is.
 * Node has no call for it, so this one-function addon provides it (agent/src/memory.ts).
 */
#include <malloc.h>
#include <node_api.h>

static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value released;
  napi_get_boolean(env, malloc_trim(0) == 1, &released);
  return released;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  return exports;
}
