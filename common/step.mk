# step.mk: how each step builds its server from its server.c and common/.
# A step's Makefile sets COMMON (the path to this folder) and includes it.
include $(COMMON)/flags.mk
BASE_CFLAGS += -I$(COMMON)

COMMON_SRC = $(wildcard $(COMMON)/*.c)
COMMON_HDR = $(wildcard $(COMMON)/*.h)
# make SANITIZE=1 BIN=server-sanitize builds the sanitizer build beside it.
BIN ?= server

$(BIN): server.c $(COMMON_SRC) $(COMMON_HDR)
	$(COMPILE) -o $@ server.c $(COMMON_SRC) $(LDLIBS)

clean:
	rm -f server server-sanitize

.PHONY: clean
