/* The support calls GNU MIG's stubs make into glibc-Hurd, as glibc behaves (no Hurd libc here).
   Shared by the conformance driver and the callgrind benchmark (`cargo xtask bench mig`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mach/mig_support.h>

static mach_port_t reply_port = MACH_PORT_NULL;

void mig_support_set_reply_port(mach_port_t port)
{
	reply_port = port;
}

mach_port_t mig_get_reply_port(void)
{
	return reply_port;
}

void mig_put_reply_port(mach_port_t port)
{
	(void)port;
}

void mig_dealloc_reply_port(mach_port_t port)
{
	printf("note dealloc_reply_port %u\n", (unsigned)port);
}

/* glibc-Hurd's behaviour: copy at most len-1 bytes, zero-fill to len-1, NUL-terminate a string
   that filled them; return the copied length. */
vm_size_t mig_strncpy(char *dst, const char *src, vm_size_t len)
{
	if (len == 0)
		return 0;
	char *end = stpncpy(dst, src, len - 1);
	vm_size_t copied = end - dst;
	if (copied == len - 1)
		*end = '\0';
	return copied;
}

void mig_allocate(vm_offset_t *addr, vm_size_t size)
{
	*addr = (vm_offset_t)calloc(1, size ? size : 1);
	if (!*addr)
		abort();
}

void mig_deallocate(vm_offset_t addr, vm_size_t size)
{
	printf("note deallocate %lu\n", (unsigned long)size);
	(void)addr; /* test memory lives until the driver exits */
}
