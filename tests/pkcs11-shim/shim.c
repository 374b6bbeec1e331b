/*
 * A PKCS#11 module that forwards to another (SoftHSM2) and injects faults: chosen CKR_*
 * codes or delays on chosen functions, for hsmkit's recovery tests
 * (crates/hsmkit-pkcs11/tests/faults.rs). Built by that test with
 *   cc -shared -fPIC -DSHIM_TARGET='"/usr/lib/softhsm/libsofthsm2.so"' \
 *      -DSHIM_CONFIG='"/tmp/x/faults"' $(pkg-config --cflags p11-kit-1) shim.c -o shim.so
 *
 * SHIM_CONFIG is read on every intercepted call. Its first line is `gen N`; a new N resets
 * the rules and the call counts. Each further line is `FUNCTION ACTION COUNT`:
 *   C_Sign 0x32 1          the next call to C_Sign returns CKR_DEVICE_REMOVED (0x32)
 *   C_OpenSession 0xe0 0   every call returns CKR_TOKEN_NOT_PRESENT (COUNT 0: no limit)
 *   C_Sign delay:300 2     the next two calls wait 300 ms, then run
 * A failed C_Sign/C_Encrypt/C_Decrypt still runs the real call to its end first, so the
 * token's operation ends as it would on a real device failure. Call counts since the
 * last `gen` are written to SHIM_CONFIG.counts as `FUNCTION COUNT` lines.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#if !defined(SHIM_TARGET) || !defined(SHIM_CONFIG)
#error "build with -DSHIM_TARGET=\"module.so\" -DSHIM_CONFIG=\"faults file\""
#endif

static CK_FUNCTION_LIST *real;
static CK_FUNCTION_LIST shim;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

#define MAX_RULES 16
#define MAX_FNS 32
struct rule {
    char fn[48];
    CK_RV rv;
    long delay_ms;
    long count;
    long used;
};
static struct rule rules[MAX_RULES];
static int nrules;
static long generation = -1;
static struct {
    const char *fn;
    long calls;
} counts[MAX_FNS];

static void count_call(const char *fn) {
    int i;
    for (i = 0; i < MAX_FNS && counts[i].fn; i++)
        if (strcmp(counts[i].fn, fn) == 0) break;
    if (i == MAX_FNS) return;
    counts[i].fn = fn;
    counts[i].calls++;
    FILE *f = fopen(SHIM_CONFIG ".counts", "w");
    if (!f) return;
    for (int j = 0; j < MAX_FNS && counts[j].fn; j++) fprintf(f, "%s %ld\n", counts[j].fn, counts[j].calls);
    fclose(f);
}

static void reload(void) {
    FILE *f = fopen(SHIM_CONFIG, "r");
    if (!f) return;
    long g;
    if (fscanf(f, "gen %ld", &g) == 1 && g != generation) {
        generation = g;
        nrules = 0;
        memset(counts, 0, sizeof counts);
        char name[48], action[32];
        long count;
        while (nrules < MAX_RULES && fscanf(f, "%47s %31s %ld", name, action, &count) == 3) {
            struct rule *r = &rules[nrules++];
            memset(r, 0, sizeof *r);
            memcpy(r->fn, name, sizeof r->fn);
            if (strncmp(action, "delay:", 6) == 0)
                r->delay_ms = strtol(action + 6, NULL, 10);
            else
                r->rv = strtoul(action, NULL, 0);
            r->count = count;
        }
    }
    fclose(f);
}

/* The code to return instead of calling `fn` (CKR_OK: call it), after any delay. */
static CK_RV fault(const char *fn) {
    CK_RV rv = CKR_OK;
    long delay = 0;
    pthread_mutex_lock(&lock);
    reload();
    count_call(fn);
    for (int i = 0; i < nrules; i++) {
        struct rule *r = &rules[i];
        if (strcmp(r->fn, fn) != 0 || (r->count > 0 && r->used >= r->count)) continue;
        r->used++;
        if (r->delay_ms)
            delay = r->delay_ms;
        else
            rv = r->rv;
        break;
    }
    pthread_mutex_unlock(&lock);
    if (delay) {
        struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return rv;
}

#define WRAP(name, params, args)                       \
    static CK_RV shim_##name params {                  \
        CK_RV rv = fault(#name);                       \
        return rv != CKR_OK ? rv : real->name args;    \
    }

/* Single-part operations: on a fault, finish the real operation first (a length query
 * leaves it active), then fail, as a device that fails mid-operation would. */
#define WRAP_FINISH(name)                                                                    \
    static CK_RV shim_##name(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,           \
                             CK_BYTE_PTR out, CK_ULONG_PTR out_len) {                        \
        CK_RV rv = fault(#name);                                                             \
        if (rv == CKR_OK) return real->name(s, in, in_len, out, out_len);                    \
        CK_ULONG n = 0;                                                                      \
        if (real->name(s, in, in_len, NULL, &n) == CKR_OK) {                                 \
            CK_BYTE *tmp = malloc(n ? n : 1);                                                \
            if (tmp) real->name(s, in, in_len, tmp, &n);                                     \
            free(tmp);                                                                       \
        }                                                                                    \
        return rv;                                                                           \
    }

WRAP(C_GetSlotList, (CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR n), (present, list, n))
WRAP(C_GetTokenInfo, (CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info), (slot, info))
WRAP(C_OpenSession, (CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify, CK_SESSION_HANDLE_PTR s),
     (slot, flags, app, notify, s))
WRAP(C_GetSessionInfo, (CK_SESSION_HANDLE s, CK_SESSION_INFO_PTR info), (s, info))
WRAP(C_Login, (CK_SESSION_HANDLE s, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len), (s, user, pin, len))
WRAP(C_CreateObject, (CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR o), (s, t, n, o))
WRAP(C_DestroyObject, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o), (s, o))
WRAP(C_GetAttributeValue, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n), (s, o, t, n))
WRAP(C_SetAttributeValue, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n), (s, o, t, n))
WRAP(C_FindObjectsInit, (CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n), (s, t, n))
WRAP(C_EncryptInit, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (s, m, k))
WRAP_FINISH(C_Encrypt)
WRAP(C_DecryptInit, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (s, m, k))
WRAP_FINISH(C_Decrypt)
WRAP(C_SignInit, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (s, m, k))
WRAP_FINISH(C_Sign)
WRAP(C_GenerateKey, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR k),
     (s, m, t, n, k))
WRAP(C_GenerateKeyPair,
     (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pt, CK_ULONG pn, CK_ATTRIBUTE_PTR kt, CK_ULONG kn,
      CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv),
     (s, m, pt, pn, kt, kn, pub, priv))
WRAP(C_WrapKey,
     (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE w, CK_OBJECT_HANDLE k, CK_BYTE_PTR out,
      CK_ULONG_PTR n),
     (s, m, w, k, out, n))
WRAP(C_UnwrapKey,
     (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE w, CK_BYTE_PTR in, CK_ULONG in_len,
      CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR k),
     (s, m, w, in, in_len, t, n, k))

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out) {
    if (!out) return CKR_ARGUMENTS_BAD;
    pthread_mutex_lock(&lock);
    if (!real) {
        void *lib = dlopen(SHIM_TARGET, RTLD_NOW | RTLD_LOCAL);
        CK_C_GetFunctionList get = lib ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
        CK_FUNCTION_LIST_PTR list = NULL;
        if (!get || get(&list) != CKR_OK || !list) {
            pthread_mutex_unlock(&lock);
            return CKR_GENERAL_ERROR;
        }
        real = list;
        shim = *list;
        shim.C_GetFunctionList = C_GetFunctionList;
        shim.C_GetSlotList = shim_C_GetSlotList;
        shim.C_GetTokenInfo = shim_C_GetTokenInfo;
        shim.C_OpenSession = shim_C_OpenSession;
        shim.C_GetSessionInfo = shim_C_GetSessionInfo;
        shim.C_Login = shim_C_Login;
        shim.C_CreateObject = shim_C_CreateObject;
        shim.C_DestroyObject = shim_C_DestroyObject;
        shim.C_GetAttributeValue = shim_C_GetAttributeValue;
        shim.C_SetAttributeValue = shim_C_SetAttributeValue;
        shim.C_FindObjectsInit = shim_C_FindObjectsInit;
        shim.C_EncryptInit = shim_C_EncryptInit;
        shim.C_Encrypt = shim_C_Encrypt;
        shim.C_DecryptInit = shim_C_DecryptInit;
        shim.C_Decrypt = shim_C_Decrypt;
        shim.C_SignInit = shim_C_SignInit;
        shim.C_Sign = shim_C_Sign;
        shim.C_GenerateKey = shim_C_GenerateKey;
        shim.C_GenerateKeyPair = shim_C_GenerateKeyPair;
        shim.C_WrapKey = shim_C_WrapKey;
        shim.C_UnwrapKey = shim_C_UnwrapKey;
    }
    pthread_mutex_unlock(&lock);
    *out = &shim;
    return CKR_OK;
}
