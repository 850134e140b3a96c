/* The tables the generated glue (built by gnu_mig.rs from GNU MIG's own headers) gives the driver. */
#ifndef DRIVER_H
#define DRIVER_H

#include <stddef.h>
#include <mach/message.h>
#include <mach/kern_return.h>

/* One GNU MIG user stub, called with its arguments read from per-parameter slots. */
struct user_routine {
	const char *name;
	unsigned nparams;
	const size_t *sizes; /* sizeof each parameter (after array-to-pointer adjustment) */
	const unsigned char *pointers; /* whether each parameter is a pointer */
	kern_return_t (*call)(void *const *slots);
};

/* One GNU MIG server demux function (`<subsystem>_server`). */
struct demuxer {
	const char *name;
	boolean_t (*demux)(mach_msg_header_t *request, mach_msg_header_t *reply);
};

extern const struct user_routine user_routines[];
extern const unsigned user_routine_count;
extern const struct demuxer demuxers[];
extern const unsigned demuxer_count;

/* Called by every generated server handler with the addresses of its parameters. */
kern_return_t handler_run(const char *name, unsigned nparams, void *const *slots, const size_t *sizes);

/* Test state kept by transport.c. */
void transport_set_reply(const unsigned char *bytes, size_t len);

/* Output helpers shared by driver.c and transport.c. */
void print_hex(const void *bytes, size_t len);

#endif
