#ifndef BILLING_COPENSSL_SHIM_H
#define BILLING_COPENSSL_SHIM_H

// OpenSSL 3.0 (Debian 12 libssl-dev). The wrappers below exist only because
// Swift cannot call these: each is a function-like macro over SSL_CTX_ctrl /
// SSL_ctrl / BIO_ctrl, or a constant built with a cast (SSL_OP_BIT).

#include <stdint.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>

// MARK: SSL_CTX macros

static inline int billing_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

static inline int billing_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}

static inline long billing_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}

static inline long billing_SSL_CTX_sess_set_cache_size(SSL_CTX *ctx, long size) {
    return SSL_CTX_sess_set_cache_size(ctx, size);
}

static inline int billing_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return (int)SSL_CTX_set1_groups_list(ctx, list);
}

// MARK: SSL_OP_* (uint64_t casts Swift does not import)

static inline uint64_t billing_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t billing_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }

// MARK: SSL macros

static inline int billing_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

// MARK: BIO macros

static inline int billing_BIO_set_mem_eof_return(BIO *bio, int value) {
    return (int)BIO_set_mem_eof_return(bio, value);
}

// MARK: constants built from casts or many macros

static inline unsigned long billing_XN_FLAG_RFC2253(void) { return XN_FLAG_RFC2253; }

#endif
