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
 *
 * Quirks. Lines `quirk NAME [ARG]` (any number, anywhere after `gen N`) make the shim
 * behave like a real token other than SoftHSM2, for hsmkit's portability tests
 * (crates/hsmkit-pkcs11/tests/quirks.rs). A new `gen` resets them (and the stuck-session
 * table below). Fault rules still apply first: a call a rule fails never reaches a quirk.
 * Everything a quirk does not name is forwarded untouched.
 *   quirk data-not-persisted    C_SetAttributeValue whose template holds CKA_VALUE, on a
 *                               CKO_DATA object, returns CKR_OK and changes nothing (the
 *                               token "accepts" the write and drops it).
 *   quirk no-token-data         C_CreateObject of a CKO_DATA object with CKA_TOKEN=TRUE
 *                               returns CKR_TEMPLATE_INCONSISTENT (session data is fine).
 *   quirk op-active-after-error A C_Encrypt/C_Decrypt/C_Sign whose real call fails (not
 *                               with CKR_BUFFER_TOO_SMALL) leaves its session "stuck": each
 *                               later C_EncryptInit/C_DecryptInit/C_SignInit/C_DigestInit/
 *                               C_VerifyInit on it returns CKR_OPERATION_ACTIVE, until
 *                               C_CloseSession of it, C_CloseAllSessions of its slot, or an
 *                               Init with a NULL mechanism (PKCS#11 3.0's cancel: it clears
 *                               the mark and returns CKR_OK without calling SoftHSM2).
 *                               Up to MAX_STUCK sessions are tracked; beyond that the
 *                               oldest mark is dropped.
 *   quirk bad-token-info [LABEL] C_GetTokenInfo sets CKF_CLOCK_ON_TOKEN and fills utcTime
 *                               with "20XX13??99887766" (not a time), for every slot, or
 *                               only for the token labelled LABEL; the rest is the real info.
 *   quirk wrap-untruncated      C_WrapKey's length query (out NULL) answers 16 bytes more
 *                               than the real length; the real call sets the true length.
 *   quirk strict-templates      C_CreateObject/C_GenerateKey/C_GenerateKeyPair return
 *                               CKR_ATTRIBUTE_TYPE_INVALID when a template carries an
 *                               attribute that does not apply: EC public key: CKA_ENCRYPT,
 *                               CKA_WRAP, CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT (present at
 *                               all); EC private key: CKA_DECRYPT, CKA_UNWRAP; AES key:
 *                               CKA_MODULUS_BITS, CKA_EC_PARAMS; RSA public key: CKA_WRAP
 *                               TRUE; RSA private key: CKA_UNWRAP TRUE (wrap-only RSA keys
 *                               are refused). The key type is CKA_KEY_TYPE from either
 *                               template, else the mechanism (CKM_EC_KEY_PAIR_GEN,
 *                               CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_AES_KEY_GEN).
 *   quirk no-rsa-unwrap         C_UnwrapKey with CKM_RSA_PKCS_OAEP returns
 *                               CKR_MECHANISM_INVALID (C_Decrypt still does OAEP).
 *   quirk no-session-objects    C_CreateObject/C_GenerateKey/C_GenerateKeyPair with
 *                               CKA_TOKEN FALSE or absent (any template, any class) return
 *                               CKR_TEMPLATE_INCONSISTENT. (C_UnwrapKey is not covered.)
 *   quirk key-held-after-error  As tpm2-pkcs11 1.9: a C_Decrypt/C_Sign whose real call fails
 *                               (not with CKR_BUFFER_TOO_SMALL) leaves the key of that
 *                               operation "held": C_DestroyObject of it returns
 *                               CKR_FUNCTION_FAILED until C_DecryptFinal/C_SignFinal on
 *                               that session (forwarded; SoftHSM2 answers
 *                               CKR_OPERATION_NOT_INITIALIZED). Closing the session does
 *                               not release it. Up to MAX_STUCK keys are tracked.
 *   quirk reused-handle         C_GenerateKeyPair makes the pair, then returns as the
 *                               private key's handle that of another private key already
 *                               on the token (the first other one C_FindObjects lists),
 *                               as tpm2-pkcs11 1.9 does once its lowest-numbered object
 *                               is destroyed (token.c token_add_tobject numbers from 2 and
 *                               hands out a handle still in use; lookups then find the
 *                               older object). With no other private key, no change.
 * Templates are walked defensively: an attribute whose pValue is NULL or whose
 * ulValueLen is too short for its type counts as absent for value checks.
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

enum {
    Q_DATA_NOT_PERSISTED = 1 << 0,
    Q_NO_TOKEN_DATA = 1 << 1,
    Q_OP_ACTIVE_AFTER_ERROR = 1 << 2,
    Q_BAD_TOKEN_INFO = 1 << 3,
    Q_WRAP_UNTRUNCATED = 1 << 4,
    Q_STRICT_TEMPLATES = 1 << 5,
    Q_NO_RSA_UNWRAP = 1 << 6,
    Q_NO_SESSION_OBJECTS = 1 << 7,
    Q_REUSED_HANDLE = 1 << 8,
    Q_KEY_HELD_AFTER_ERROR = 1 << 9,
};
static const struct {
    const char *name;
    unsigned bit;
} quirk_names[] = {
    {"data-not-persisted", Q_DATA_NOT_PERSISTED}, {"no-token-data", Q_NO_TOKEN_DATA},
    {"op-active-after-error", Q_OP_ACTIVE_AFTER_ERROR}, {"bad-token-info", Q_BAD_TOKEN_INFO},
    {"wrap-untruncated", Q_WRAP_UNTRUNCATED}, {"strict-templates", Q_STRICT_TEMPLATES},
    {"no-rsa-unwrap", Q_NO_RSA_UNWRAP}, {"no-session-objects", Q_NO_SESSION_OBJECTS},
    {"reused-handle", Q_REUSED_HANDLE}, {"key-held-after-error", Q_KEY_HELD_AFTER_ERROR},
};
static unsigned quirks;
static char bad_info_label[33]; /* empty: every slot */

/* Sessions left with an operation "active" by op-active-after-error. */
#define MAX_STUCK 64
static struct {
    CK_SESSION_HANDLE s;
    CK_SLOT_ID slot;
    int used;
} stuck[MAX_STUCK];
static int stuck_next;

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

static void parse_quirk(const char *line) {
    char name[48], arg[64] = "";
    int n = sscanf(line, "quirk %47s %63s", name, arg);
    if (n < 1) return;
    for (size_t i = 0; i < sizeof quirk_names / sizeof quirk_names[0]; i++) {
        if (strcmp(quirk_names[i].name, name) != 0) continue;
        quirks |= quirk_names[i].bit;
        if (quirk_names[i].bit == Q_BAD_TOKEN_INFO && n == 2) {
            strncpy(bad_info_label, arg, sizeof bad_info_label - 1);
            bad_info_label[sizeof bad_info_label - 1] = '\0';
        }
        return;
    }
    fprintf(stderr, "pkcs11 shim: unknown quirk '%s'\n", name);
}

static void reload(void) {
    FILE *f = fopen(SHIM_CONFIG, "r");
    if (!f) return;
    char line[256];
    long g;
    if (fgets(line, sizeof line, f) && sscanf(line, "gen %ld", &g) == 1 && g != generation) {
        generation = g;
        nrules = 0;
        quirks = 0;
        bad_info_label[0] = '\0';
        memset(stuck, 0, sizeof stuck);
        memset(counts, 0, sizeof counts);
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "quirk ", 6) == 0) {
                parse_quirk(line);
                continue;
            }
            char name[48], action[32];
            long count;
            if (nrules == MAX_RULES || sscanf(line, "%47s %31s %ld", name, action, &count) != 3) continue;
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

/* Whether quirk `q` is on (as of the last reload, which fault() just did). */
static int quirk(unsigned q) {
    pthread_mutex_lock(&lock);
    int on = (quirks & q) != 0;
    pthread_mutex_unlock(&lock);
    return on;
}

/* ---- templates, walked defensively ---- */

static CK_ATTRIBUTE_PTR find_attr(CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_ATTRIBUTE_TYPE type) {
    if (!t) return NULL;
    for (CK_ULONG i = 0; i < n; i++)
        if (t[i].type == type) return &t[i];
    return NULL;
}

/* 1 and *out if `type` is present with a readable CK_ULONG value, else 0. */
static int attr_ulong(CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_ATTRIBUTE_TYPE type, CK_ULONG *out) {
    CK_ATTRIBUTE_PTR a = find_attr(t, n, type);
    if (!a || !a->pValue || a->ulValueLen < sizeof(CK_ULONG)) return 0;
    memcpy(out, a->pValue, sizeof(CK_ULONG));
    return 1;
}

/* The CK_BBOOL value of `type`: 1, 0, or -1 if absent or unreadable. */
static int attr_bool(CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_ATTRIBUTE_TYPE type) {
    CK_ATTRIBUTE_PTR a = find_attr(t, n, type);
    if (!a || !a->pValue || a->ulValueLen < sizeof(CK_BBOOL)) return -1;
    return *(CK_BBOOL *)a->pValue ? 1 : 0;
}

static int is_token_object(CK_ATTRIBUTE_PTR t, CK_ULONG n) { return attr_bool(t, n, CKA_TOKEN) == 1; }

#define NO_KEY_TYPE ((CK_ULONG)-1)

/* strict-templates: whether a template of `class`/`key_type` carries an attribute that
 * does not apply to that object. */
static int inapplicable(CK_OBJECT_CLASS class, CK_KEY_TYPE key_type, CK_ATTRIBUTE_PTR t, CK_ULONG n) {
    static const CK_ATTRIBUTE_TYPE ec_public[] = {CKA_ENCRYPT, CKA_WRAP, CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT};
    static const CK_ATTRIBUTE_TYPE ec_private[] = {CKA_DECRYPT, CKA_UNWRAP};
    static const CK_ATTRIBUTE_TYPE aes[] = {CKA_MODULUS_BITS, CKA_EC_PARAMS};
    const CK_ATTRIBUTE_TYPE *bad = NULL;
    size_t nbad = 0;
    if (key_type == CKK_EC && class == CKO_PUBLIC_KEY) {
        bad = ec_public;
        nbad = sizeof ec_public / sizeof ec_public[0];
    } else if (key_type == CKK_EC && class == CKO_PRIVATE_KEY) {
        bad = ec_private;
        nbad = sizeof ec_private / sizeof ec_private[0];
    } else if (key_type == CKK_AES && class == CKO_SECRET_KEY) {
        bad = aes;
        nbad = sizeof aes / sizeof aes[0];
    } else if (key_type == CKK_RSA && class == CKO_PUBLIC_KEY) {
        return attr_bool(t, n, CKA_WRAP) == 1;
    } else if (key_type == CKK_RSA && class == CKO_PRIVATE_KEY) {
        return attr_bool(t, n, CKA_UNWRAP) == 1;
    }
    for (size_t i = 0; i < nbad; i++)
        if (find_attr(t, n, bad[i])) return 1;
    return 0;
}

static CK_KEY_TYPE key_type_of(CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t1, CK_ULONG n1, CK_ATTRIBUTE_PTR t2,
                               CK_ULONG n2) {
    CK_ULONG kt;
    if (attr_ulong(t1, n1, CKA_KEY_TYPE, &kt) || attr_ulong(t2, n2, CKA_KEY_TYPE, &kt)) return kt;
    if (!m) return NO_KEY_TYPE;
    switch (m->mechanism) {
    case CKM_EC_KEY_PAIR_GEN: return CKK_EC;
    case CKM_RSA_PKCS_KEY_PAIR_GEN: return CKK_RSA;
    case CKM_AES_KEY_GEN: return CKK_AES;
    default: return NO_KEY_TYPE;
    }
}

/* ---- op-active-after-error: the stuck-session table ---- */

static int stuck_find(CK_SESSION_HANDLE s) {
    for (int i = 0; i < MAX_STUCK; i++)
        if (stuck[i].used && stuck[i].s == s) return i;
    return -1;
}

static void stuck_mark(CK_SESSION_HANDLE s) {
    CK_SESSION_INFO info;
    CK_SLOT_ID slot = real->C_GetSessionInfo(s, &info) == CKR_OK ? info.slotID : (CK_SLOT_ID)-1;
    pthread_mutex_lock(&lock);
    if (stuck_find(s) < 0) {
        int i = stuck_next;
        stuck_next = (stuck_next + 1) % MAX_STUCK;
        stuck[i].s = s;
        stuck[i].slot = slot;
        stuck[i].used = 1;
    }
    pthread_mutex_unlock(&lock);
}

/* Clears the mark of session `s`; returns whether there was one. */
static int stuck_clear(CK_SESSION_HANDLE s) {
    pthread_mutex_lock(&lock);
    int i = stuck_find(s);
    if (i >= 0) stuck[i].used = 0;
    pthread_mutex_unlock(&lock);
    return i >= 0;
}

static int stuck_is(CK_SESSION_HANDLE s) {
    pthread_mutex_lock(&lock);
    int r = stuck_find(s) >= 0;
    pthread_mutex_unlock(&lock);
    return r;
}

static void stuck_clear_slot(CK_SLOT_ID slot) {
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_STUCK; i++)
        if (stuck[i].used && stuck[i].slot == slot) stuck[i].used = 0;
    pthread_mutex_unlock(&lock);
}

static void stuck_clear_all(void) {
    pthread_mutex_lock(&lock);
    memset(stuck, 0, sizeof stuck);
    pthread_mutex_unlock(&lock);
}

/* ---- key-held-after-error: the key of each session's last operation, and held keys ---- */

static struct {
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE k;
    int used;
} op_key[MAX_STUCK], held[MAX_STUCK];
static int op_key_next, held_next;

static void op_key_set(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k) {
    pthread_mutex_lock(&lock);
    int i;
    for (i = 0; i < MAX_STUCK; i++)
        if (op_key[i].used && op_key[i].s == s) break;
    if (i == MAX_STUCK) {
        i = op_key_next;
        op_key_next = (op_key_next + 1) % MAX_STUCK;
    }
    op_key[i].s = s;
    op_key[i].k = k;
    op_key[i].used = 1;
    pthread_mutex_unlock(&lock);
}

static void hold_key_of(CK_SESSION_HANDLE s) {
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_STUCK; i++) {
        if (!op_key[i].used || op_key[i].s != s) continue;
        int j = held_next;
        held_next = (held_next + 1) % MAX_STUCK;
        held[j].s = s;
        held[j].k = op_key[i].k;
        held[j].used = 1;
        break;
    }
    pthread_mutex_unlock(&lock);
}

static void release_held(CK_SESSION_HANDLE s) {
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_STUCK; i++)
        if (held[i].used && held[i].s == s) held[i].used = 0;
    pthread_mutex_unlock(&lock);
}

static int holds(CK_SESSION_HANDLE s) {
    pthread_mutex_lock(&lock);
    int r = 0;
    for (int i = 0; i < MAX_STUCK; i++)
        if (held[i].used && held[i].s == s) r = 1;
    pthread_mutex_unlock(&lock);
    return r;
}

static int is_held(CK_OBJECT_HANDLE k) {
    pthread_mutex_lock(&lock);
    int r = 0;
    for (int i = 0; i < MAX_STUCK; i++)
        if (held[i].used && held[i].k == k) r = 1;
    pthread_mutex_unlock(&lock);
    return r;
}

static void held_clear_all(void) {
    pthread_mutex_lock(&lock);
    memset(op_key, 0, sizeof op_key);
    memset(held, 0, sizeof held);
    pthread_mutex_unlock(&lock);
}

/* ---- wrappers ---- */

#define WRAP(name, params, args)                       \
    static CK_RV shim_##name params {                  \
        CK_RV rv = fault(#name);                       \
        return rv != CKR_OK ? rv : real->name args;    \
    }

/* Single-part operations: on a fault, finish the real operation first (a length query
 * leaves it active), then fail, as a device that fails mid-operation would. With
 * op-active-after-error, a real failure marks the session stuck. */
#define WRAP_FINISH(name)                                                                    \
    static CK_RV shim_##name(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len,           \
                             CK_BYTE_PTR out, CK_ULONG_PTR out_len) {                        \
        CK_RV rv = fault(#name);                                                             \
        if (rv == CKR_OK) {                                                                  \
            rv = real->name(s, in, in_len, out, out_len);                                    \
            if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL && quirk(Q_OP_ACTIVE_AFTER_ERROR)) \
                stuck_mark(s);                                                               \
            if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL && quirk(Q_KEY_HELD_AFTER_ERROR)) \
                hold_key_of(s);                                                              \
            return rv;                                                                       \
        }                                                                                    \
        CK_ULONG n = 0;                                                                      \
        if (real->name(s, in, in_len, NULL, &n) == CKR_OK) {                                 \
            CK_BYTE *tmp = malloc(n ? n : 1);                                                \
            if (tmp) real->name(s, in, in_len, tmp, &n);                                     \
            free(tmp);                                                                       \
        }                                                                                    \
        return rv;                                                                           \
    }

/* Operation starts: refused on a stuck session (op-active-after-error). */
#define WRAP_INIT(name)                                                                      \
    static CK_RV shim_##name(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) {  \
        CK_RV rv = fault(#name);                                                             \
        if (rv != CKR_OK) return rv;                                                         \
        if (quirk(Q_OP_ACTIVE_AFTER_ERROR) && stuck_is(s)) {                                 \
            if (!m && stuck_clear(s)) return CKR_OK;                                         \
            return CKR_OPERATION_ACTIVE;                                                     \
        }                                                                                    \
        if (quirk(Q_KEY_HELD_AFTER_ERROR)) op_key_set(s, k);                                 \
        return real->name(s, m, k);                                                          \
    }

static CK_RV shim_C_DigestInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m) {
    CK_RV rv = fault("C_DigestInit");
    if (rv != CKR_OK) return rv;
    if (quirk(Q_OP_ACTIVE_AFTER_ERROR) && stuck_is(s)) {
        if (!m && stuck_clear(s)) return CKR_OK;
        return CKR_OPERATION_ACTIVE;
    }
    return real->C_DigestInit(s, m);
}

static CK_RV shim_C_Initialize(CK_VOID_PTR args) {
    CK_RV rv = real->C_Initialize(args);
    if (rv == CKR_OK) {
        stuck_clear_all();
        held_clear_all();
    }
    return rv;
}

static CK_RV shim_C_Finalize(CK_VOID_PTR reserved) {
    CK_RV rv = real->C_Finalize(reserved);
    if (rv == CKR_OK) {
        stuck_clear_all();
        held_clear_all();
    }
    return rv;
}

static CK_RV shim_C_CloseSession(CK_SESSION_HANDLE s) {
    CK_RV rv = fault("C_CloseSession");
    if (rv != CKR_OK) return rv;
    rv = real->C_CloseSession(s);
    stuck_clear(s);
    return rv;
}

static CK_RV shim_C_CloseAllSessions(CK_SLOT_ID slot) {
    CK_RV rv = fault("C_CloseAllSessions");
    if (rv != CKR_OK) return rv;
    rv = real->C_CloseAllSessions(slot);
    stuck_clear_slot(slot);
    return rv;
}

static CK_RV shim_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
    CK_RV rv = fault("C_GetTokenInfo");
    if (rv != CKR_OK) return rv;
    rv = real->C_GetTokenInfo(slot, info);
    if (rv != CKR_OK || !info || !quirk(Q_BAD_TOKEN_INFO)) return rv;
    char want[33];
    pthread_mutex_lock(&lock);
    memcpy(want, bad_info_label, sizeof want);
    pthread_mutex_unlock(&lock);
    if (want[0]) {
        /* The label is blank-padded to 32 bytes. */
        size_t len = strlen(want);
        if (memcmp(info->label, want, len) != 0) return rv;
        for (size_t i = len; i < sizeof info->label; i++)
            if (info->label[i] != ' ') return rv;
    }
    info->flags |= CKF_CLOCK_ON_TOKEN;
    memcpy(info->utcTime, "20XX13??99887766", sizeof info->utcTime);
    return rv;
}

static CK_RV shim_C_SetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n) {
    CK_RV rv = fault("C_SetAttributeValue");
    if (rv != CKR_OK) return rv;
    if (quirk(Q_DATA_NOT_PERSISTED) && find_attr(t, n, CKA_VALUE)) {
        CK_OBJECT_CLASS class = 0;
        CK_ATTRIBUTE q = {CKA_CLASS, &class, sizeof class};
        if (real->C_GetAttributeValue(s, o, &q, 1) == CKR_OK && class == CKO_DATA) return CKR_OK;
    }
    return real->C_SetAttributeValue(s, o, t, n);
}

static CK_RV shim_C_CreateObject(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR o) {
    CK_RV rv = fault("C_CreateObject");
    if (rv != CKR_OK) return rv;
    CK_ULONG class = (CK_ULONG)-1;
    attr_ulong(t, n, CKA_CLASS, &class);
    if (quirk(Q_NO_TOKEN_DATA) && class == CKO_DATA && is_token_object(t, n)) return CKR_TEMPLATE_INCONSISTENT;
    if (quirk(Q_NO_SESSION_OBJECTS) && !is_token_object(t, n)) return CKR_TEMPLATE_INCONSISTENT;
    if (quirk(Q_STRICT_TEMPLATES) && inapplicable(class, key_type_of(NULL, t, n, NULL, 0), t, n))
        return CKR_ATTRIBUTE_TYPE_INVALID;
    return real->C_CreateObject(s, t, n, o);
}

static CK_RV shim_C_GenerateKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                                CK_OBJECT_HANDLE_PTR k) {
    CK_RV rv = fault("C_GenerateKey");
    if (rv != CKR_OK) return rv;
    if (quirk(Q_NO_SESSION_OBJECTS) && !is_token_object(t, n)) return CKR_TEMPLATE_INCONSISTENT;
    if (quirk(Q_STRICT_TEMPLATES) && inapplicable(CKO_SECRET_KEY, key_type_of(m, t, n, NULL, 0), t, n))
        return CKR_ATTRIBUTE_TYPE_INVALID;
    return real->C_GenerateKey(s, m, t, n, k);
}

static CK_RV shim_C_GenerateKeyPair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pt, CK_ULONG pn,
                                    CK_ATTRIBUTE_PTR kt, CK_ULONG kn, CK_OBJECT_HANDLE_PTR pub,
                                    CK_OBJECT_HANDLE_PTR priv) {
    CK_RV rv = fault("C_GenerateKeyPair");
    if (rv != CKR_OK) return rv;
    if (quirk(Q_NO_SESSION_OBJECTS) && (!is_token_object(pt, pn) || !is_token_object(kt, kn)))
        return CKR_TEMPLATE_INCONSISTENT;
    if (quirk(Q_STRICT_TEMPLATES)) {
        CK_KEY_TYPE type = key_type_of(m, pt, pn, kt, kn);
        if (inapplicable(CKO_PUBLIC_KEY, type, pt, pn) || inapplicable(CKO_PRIVATE_KEY, type, kt, kn))
            return CKR_ATTRIBUTE_TYPE_INVALID;
    }
    rv = real->C_GenerateKeyPair(s, m, pt, pn, kt, kn, pub, priv);
    if (rv == CKR_OK && quirk(Q_REUSED_HANDLE)) {
        CK_OBJECT_CLASS class = CKO_PRIVATE_KEY;
        CK_ATTRIBUTE t = {CKA_CLASS, &class, sizeof class};
        CK_OBJECT_HANDLE found[16];
        CK_ULONG count = 0;
        if (real->C_FindObjectsInit(s, &t, 1) == CKR_OK) {
            if (real->C_FindObjects(s, found, 16, &count) != CKR_OK) count = 0;
            real->C_FindObjectsFinal(s);
        }
        for (CK_ULONG i = 0; i < count; i++) {
            if (found[i] != *priv) {
                *priv = found[i];
                break;
            }
        }
    }
    return rv;
}

static CK_RV shim_C_WrapKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE w, CK_OBJECT_HANDLE k,
                            CK_BYTE_PTR out, CK_ULONG_PTR n) {
    CK_RV rv = fault("C_WrapKey");
    if (rv != CKR_OK) return rv;
    rv = real->C_WrapKey(s, m, w, k, out, n);
    if (rv == CKR_OK && !out && n && quirk(Q_WRAP_UNTRUNCATED)) *n += 16;
    return rv;
}

static CK_RV shim_C_UnwrapKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE w, CK_BYTE_PTR in,
                              CK_ULONG in_len, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR k) {
    CK_RV rv = fault("C_UnwrapKey");
    if (rv != CKR_OK) return rv;
    if (quirk(Q_NO_RSA_UNWRAP) && m && m->mechanism == CKM_RSA_PKCS_OAEP) return CKR_MECHANISM_INVALID;
    return real->C_UnwrapKey(s, m, w, in, in_len, t, n, k);
}

WRAP(C_GetSlotList, (CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR n), (present, list, n))
WRAP(C_OpenSession, (CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify, CK_SESSION_HANDLE_PTR s),
     (slot, flags, app, notify, s))
WRAP(C_GetSessionInfo, (CK_SESSION_HANDLE s, CK_SESSION_INFO_PTR info), (s, info))
WRAP(C_Login, (CK_SESSION_HANDLE s, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len), (s, user, pin, len))
WRAP(C_GetAttributeValue, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n), (s, o, t, n))
WRAP(C_FindObjectsInit, (CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n), (s, t, n))
static CK_RV shim_C_DestroyObject(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o) {
    CK_RV rv = fault("C_DestroyObject");
    if (rv != CKR_OK) return rv;
    if (quirk(Q_KEY_HELD_AFTER_ERROR) && is_held(o)) return CKR_FUNCTION_FAILED;
    return real->C_DestroyObject(s, o);
}

/* Multi-part ends. On a session key-held-after-error holds a key for, they answer as
 * tpm2-pkcs11 does: a length query (out NULL) gives 0 and ends nothing; a call with a
 * buffer ends the operation and releases the key. */
#define WRAP_FINAL(name)                                                                     \
    static CK_RV shim_##name(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {   \
        CK_RV rv = fault(#name);                                                             \
        if (rv != CKR_OK) return rv;                                                         \
        if (quirk(Q_KEY_HELD_AFTER_ERROR) && holds(s)) {                                     \
            if (!out_len) return CKR_ARGUMENTS_BAD;                                          \
            if (out) release_held(s);                                                        \
            *out_len = 0;                                                                    \
            return CKR_OK;                                                                   \
        }                                                                                    \
        return real->name(s, out, out_len);                                                  \
    }
WRAP_FINAL(C_DecryptFinal)
WRAP_FINAL(C_SignFinal)

WRAP_INIT(C_EncryptInit)
WRAP_FINISH(C_Encrypt)
WRAP_INIT(C_DecryptInit)
WRAP_FINISH(C_Decrypt)
WRAP_INIT(C_SignInit)
WRAP_FINISH(C_Sign)
WRAP_INIT(C_VerifyInit)

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
        shim.C_Initialize = shim_C_Initialize;
        shim.C_Finalize = shim_C_Finalize;
        shim.C_GetSlotList = shim_C_GetSlotList;
        shim.C_GetTokenInfo = shim_C_GetTokenInfo;
        shim.C_OpenSession = shim_C_OpenSession;
        shim.C_CloseSession = shim_C_CloseSession;
        shim.C_CloseAllSessions = shim_C_CloseAllSessions;
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
        shim.C_DecryptFinal = shim_C_DecryptFinal;
        shim.C_SignFinal = shim_C_SignFinal;
        shim.C_DigestInit = shim_C_DigestInit;
        shim.C_SignInit = shim_C_SignInit;
        shim.C_Sign = shim_C_Sign;
        shim.C_VerifyInit = shim_C_VerifyInit;
        shim.C_GenerateKey = shim_C_GenerateKey;
        shim.C_GenerateKeyPair = shim_C_GenerateKeyPair;
        shim.C_WrapKey = shim_C_WrapKey;
        shim.C_UnwrapKey = shim_C_UnwrapKey;
    }
    pthread_mutex_unlock(&lock);
    *out = &shim;
    return CKR_OK;
}
