/* Stand-in for glibc-Hurd's <mach/mig_support.h>: the declarations GNU MIG's stubs call.
   mig_support.c defines them; there is no Hurd libc on the test host. */
#ifndef MIG_SUPPORT_SHIM_H
#define MIG_SUPPORT_SHIM_H

#include <mach/port.h>
#include <mach/message.h>
#include <mach/std_types.h>
#include <string.h>

mach_port_t mig_get_reply_port(void);
void mig_put_reply_port(mach_port_t port);
void mig_dealloc_reply_port(mach_port_t port);
vm_size_t mig_strncpy(char *dst, const char *src, vm_size_t len);
void mig_allocate(vm_offset_t *addr, vm_size_t size);
void mig_deallocate(vm_offset_t addr, vm_size_t size);

/* Not glibc's: the name mig_get_reply_port returns (mig_support.c). */
void mig_support_set_reply_port(mach_port_t port);

#endif
