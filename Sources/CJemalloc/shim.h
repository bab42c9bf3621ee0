#ifndef BILLING_CJEMALLOC_SHIM_H
#define BILLING_CJEMALLOC_SHIM_H
// jemalloc, linked into the `billing` executable: its malloc and free take
// the place of glibc's for the whole process (see README, Performance).
// Only its control call and malloc_usable_size (malloc.h, which Swift's
// Glibc module leaves out) are declared here; jemalloc.h redeclares malloc
// and friends, which the Glibc module already declares.
#include <stddef.h>
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
size_t malloc_usable_size(void *ptr);
#endif
