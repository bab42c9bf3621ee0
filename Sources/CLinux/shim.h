#ifndef BILLING_CLINUX_SHIM_H
#define BILLING_CLINUX_SHIM_H
// Linux-only calls that Swift's Glibc module does not export.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

// accept4 is declared only under _GNU_SOURCE, which Glibc's module map does
// not set; declare it here (it has been in glibc since 2.10).
extern int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);

// Names the calling thread (15 bytes at most): pthread_setname_np is
// declared only under _GNU_SOURCE too (glibc 2.12).
#include <pthread.h>
extern int pthread_setname_np(pthread_t thread, const char *name);

// Asks for the cache line at `address` ahead of a read (a hint: it never
// faults, whatever the address). Swift has no prefetch of its own.
static inline void billing_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}
#endif
