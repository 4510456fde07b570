#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
/* malloc_trim: the daemon hands freed heap pages back after each run (glibc). */
#include <malloc.h>
