/* GNU MIG's C side of `cargo xtask bench mig`: each bench_* function calls one GNU MIG user stub
   N times over a loopback transport that copies a pre-made reply into the message buffer, so
   callgrind's inclusive count of bench_* is N × (encode the request + decode the reply + copy).

   `bench replies` makes those replies once, by handing each request to GNU MIG's own server
   (device_server) with fixed handler results, and prints them as `<routine> x<hex>`.
   `bench run N` reads them back on stdin and runs each bench_* function. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mach/mig_support.h>
#include <mach/mig_errors.h>
#include <device/device_types.h>
#include "device.h"

/* Older headers (Debian trixie's) predate the flavor; its value is fixed upstream. */
#ifndef DEV_FLUSH_CACHE
#define DEV_FLUSH_CACHE 2
#endif

boolean_t device_server(mach_msg_header_t *request, mach_msg_header_t *reply);

enum { OPEN, WRITE_INBAND, READ, SET_STATUS, GET_STATUS, ROUTINES };
static const char *const routine_names[ROUTINES] = {
	"device_open", "device_write_inband", "device_read", "device_set_status", "device_get_status",
};

static union {
	mach_msg_header_t header;
	unsigned char bytes[8192];
} replies[ROUTINES], served;
static size_t reply_lens[ROUTINES];
static int current;
static int making_replies;

mach_msg_return_t mach_msg(mach_msg_header_t *msg, mach_msg_option_t option, mach_msg_size_t send_size,
			   mach_msg_size_t rcv_size, mach_port_name_t rcv_name, mach_msg_timeout_t timeout,
			   mach_port_name_t notify)
{
	(void)option, (void)send_size, (void)rcv_name, (void)timeout, (void)notify;
	if (making_replies) {
		memset(&served, 0, sizeof served);
		device_server(msg, &served.header);
		reply_lens[current] = served.header.msgh_size;
		memcpy(replies[current].bytes, served.bytes, served.header.msgh_size);
	}
	if (reply_lens[current] > rcv_size)
		return MACH_RCV_TOO_LARGE;
	memcpy(msg, replies[current].bytes, reply_lens[current]);
	return MACH_MSG_SUCCESS;
}

/* The same inputs the Rust side uses (mach/examples/bench_mig.rs). */
static char write_data[128];
static char read_data[4096];
static int status[1024];

__attribute__((noinline)) void bench_device_open(long n)
{
	mach_port_t device;
	for (long i = 0; i < n; i++)
		if (device_open(5, D_READ | D_WRITE, "wd0", &device) != KERN_SUCCESS)
			abort();
}

__attribute__((noinline)) void bench_device_write_inband(long n)
{
	int written;
	for (long i = 0; i < n; i++)
		if (device_write_inband(7, 0, 8, write_data, sizeof write_data, &written) != KERN_SUCCESS)
			abort();
}

__attribute__((noinline)) void bench_device_read(long n)
{
	io_buf_ptr_t data;
	mach_msg_type_number_t count;
	for (long i = 0; i < n; i++)
		if (device_read(7, 0, 8, sizeof read_data, &data, &count) != KERN_SUCCESS)
			abort();
}

__attribute__((noinline)) void bench_device_set_status(long n)
{
	for (long i = 0; i < n; i++)
		if (device_set_status(7, DEV_FLUSH_CACHE, NULL, 0) != KERN_SUCCESS)
			abort();
}

__attribute__((noinline)) void bench_device_get_status(long n)
{
	for (long i = 0; i < n; i++) {
		mach_msg_type_number_t count = 1024;
		if (device_get_status(7, DEV_GET_RECORDS, status, &count) != KERN_SUCCESS || count != 2)
			abort();
	}
}

/* Handler results for making the replies. */
kern_return_t ds_device_open(mach_port_t master, mach_port_t reply, mach_msg_type_name_t reply_poly,
			     dev_mode_t mode, const_dev_name_t name, mach_port_t *device,
			     mach_msg_type_name_t *device_poly)
{
	*device = 42;
	*device_poly = MACH_MSG_TYPE_MOVE_SEND;
	return KERN_SUCCESS;
}

kern_return_t ds_device_write_inband(mach_port_t device, mach_port_t reply, mach_msg_type_name_t reply_poly,
				     dev_mode_t mode, recnum_t recnum, const io_buf_ptr_inband_t data,
				     mach_msg_type_number_t count, int *written)
{
	*written = count;
	return KERN_SUCCESS;
}

kern_return_t ds_device_read(mach_port_t device, mach_port_t reply, mach_msg_type_name_t reply_poly,
			     dev_mode_t mode, recnum_t recnum, int wanted, io_buf_ptr_t *data,
			     mach_msg_type_number_t *count)
{
	*data = read_data;
	*count = wanted;
	return KERN_SUCCESS;
}

kern_return_t ds_device_set_status(mach_port_t device, dev_flavor_t flavor, const dev_status_t status,
				   mach_msg_type_number_t count)
{
	return KERN_SUCCESS;
}

kern_return_t ds_device_get_status(mach_port_t device, dev_flavor_t flavor, dev_status_t status,
				   mach_msg_type_number_t *count)
{
	status[0] = 1 << 20;
	status[1] = 512;
	*count = 2;
	return KERN_SUCCESS;
}

/* The routines the benchmark does not use. */
kern_return_t ds_device_close(mach_port_t device) { return MIG_BAD_ID; }
kern_return_t ds_device_write(mach_port_t device, mach_port_t reply, mach_msg_type_name_t reply_poly,
			      dev_mode_t mode, recnum_t recnum, io_buf_ptr_t data, mach_msg_type_number_t count,
			      int *written) { return MIG_BAD_ID; }
kern_return_t ds_device_read_inband(mach_port_t device, mach_port_t reply, mach_msg_type_name_t reply_poly,
				    dev_mode_t mode, recnum_t recnum, int wanted, io_buf_ptr_inband_t data,
				    mach_msg_type_number_t *count) { return MIG_BAD_ID; }
kern_return_t ds_device_map(mach_port_t device, vm_prot_t prot, vm_offset_t offset, vm_size_t size,
			    mach_port_t *pager, int unmap) { return MIG_BAD_ID; }
kern_return_t ds_device_set_filter(mach_port_t device, mach_port_t receive_port, int priority,
				   const filter_array_t filter, mach_msg_type_number_t count) { return MIG_BAD_ID; }
kern_return_t ds_device_intr_register(mach_port_t device, int id, int flags, mach_port_t receive_port)
{ return MIG_BAD_ID; }
kern_return_t ds_device_intr_ack(mach_port_t device, mach_port_t receive_port) { return MIG_BAD_ID; }

static void (*const benches[ROUTINES])(long) = {
	bench_device_open, bench_device_write_inband, bench_device_read, bench_device_set_status,
	bench_device_get_status,
};

static void print_hex(const unsigned char *b, size_t len)
{
	putchar('x');
	for (size_t i = 0; i < len; i++)
		printf("%02x", b[i]);
}

int main(int argc, char **argv)
{
	mig_support_set_reply_port(9);
	memset(write_data, 'w', sizeof write_data);
	if (argc == 2 && strcmp(argv[1], "replies") == 0) {
		making_replies = 1;
		for (current = 0; current < ROUTINES; current++) {
			benches[current](1);
			printf("%s ", routine_names[current]);
			print_hex(replies[current].bytes, reply_lens[current]);
			putchar('\n');
		}
		return 0;
	}
	if (argc != 3 || strcmp(argv[1], "run") != 0) {
		fprintf(stderr, "usage: bench replies | bench run N < replies\n");
		return 2;
	}
	long n = atol(argv[2]);
	char name[64], hex[16384];
	for (current = 0; current < ROUTINES; current++) {
		if (scanf("%63s x%16383s", name, hex) != 2 || strcmp(name, routine_names[current]) != 0) {
			fprintf(stderr, "bench: expected the reply of %s\n", routine_names[current]);
			return 1;
		}
		reply_lens[current] = strlen(hex) / 2;
		for (size_t i = 0; i < reply_lens[current]; i++)
			sscanf(hex + 2 * i, "%2hhx", &replies[current].bytes[i]);
		benches[current](n);
	}
	return 0;
}
