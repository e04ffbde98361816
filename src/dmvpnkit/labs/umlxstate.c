/* LD_PRELOAD shim for Debian's linux.uml 6.1 on hosts with a large XSAVE area (AMX).

   UML keeps a fixed-size FP buffer per thread and restores it with
   PTRACE_SETREGSET(NT_X86_XSTATE); the host kernel accepts that call only with the
   whole XSAVE area (arch/x86/kernel/fpu/regset.c), so on AMX hosts every guest process
   dies with "ptrace set fp regs failed, errno = 14". Here each UML buffer gets a
   full-size shadow: GETREGSET fills the shadow and copies UML its prefix, SETREGSET
   overlays UML's prefix on the shadow and hands the host the whole area. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#define SLOTS 8192

typedef long (*ptrace_fn)(int, pid_t, void *, void *);
static ptrace_fn real_ptrace;
static size_t full_size;
static struct { void *key; unsigned char *shadow; } slots[SLOTS];

static unsigned char *shadow_for(void *key, int *fresh)
{
	size_t h = ((uintptr_t)key >> 4) % SLOTS;
	for (size_t i = 0; i < SLOTS; i++, h = (h + 1) % SLOTS) {
		if (slots[h].key == key) {
			*fresh = 0;
			return slots[h].shadow;
		}
		if (slots[h].key == NULL) {
			slots[h].shadow = calloc(1, full_size);
			if (slots[h].shadow == NULL)
				return NULL;
			slots[h].key = key;
			*fresh = 1;
			return slots[h].shadow;
		}
	}
	return NULL;
}

long ptrace(enum __ptrace_request request, ...)
{
	va_list ap;
	va_start(ap, request);
	pid_t pid = va_arg(ap, pid_t);
	void *addr = va_arg(ap, void *);
	void *data = va_arg(ap, void *);
	va_end(ap);
	if (real_ptrace == NULL)
		real_ptrace = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");

	int xstate = (request == PTRACE_GETREGSET || request == PTRACE_SETREGSET) &&
		     (uintptr_t)addr == NT_X86_XSTATE;
	if (!xstate)
		return real_ptrace(request, pid, addr, data);

	struct iovec *iov = data;
	if (full_size == 0) {
		/* The host reports its XSAVE size as the length it fills in. */
		static unsigned char probe[1 << 16];
		struct iovec big = { probe, sizeof(probe) };
		if (real_ptrace(PTRACE_GETREGSET, pid, addr, &big) < 0)
			return real_ptrace(request, pid, addr, data);
		full_size = big.iov_len;
	}
	if (iov->iov_len >= full_size)
		return real_ptrace(request, pid, addr, data);

	int fresh;
	unsigned char *shadow = shadow_for(iov->iov_base, &fresh);
	if (shadow == NULL) {
		errno = ENOMEM;
		return -1;
	}
	struct iovec whole = { shadow, full_size };
	if (request == PTRACE_GETREGSET) {
		long rc = real_ptrace(PTRACE_GETREGSET, pid, addr, &whole);
		if (rc == 0)
			memcpy(iov->iov_base, shadow, iov->iov_len);
		return rc;
	}
	if (fresh && real_ptrace(PTRACE_GETREGSET, pid, addr, &whole) < 0)
		return -1;
	memcpy(shadow, iov->iov_base, iov->iov_len);
	return real_ptrace(PTRACE_SETREGSET, pid, addr, &whole);
}
