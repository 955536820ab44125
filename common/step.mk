# step.mk: how each step builds its server from its server.c and common/.
# A step's Makefile sets COMMON (the path to this folder) and includes it.
include $(COMMON)/flags.mk
BASE_CFLAGS += -I$(COMMON)

COMMON_SRC = $(wildcard $(COMMON)/*.c)
COMMON_HDR = $(wildcard $(COMMON)/*.h)
# A step with files of its own besides server.c names them in STEP_SRC and
# STEP_HDR before including this (step 6: ring.c and ring.h).
STEP_SRC ?=
STEP_HDR ?=
# make SANITIZE=1 BIN=server-sanitize builds the sanitizer build beside it.
BIN ?= server

$(BIN): server.c $(STEP_SRC) $(STEP_HDR) $(COMMON_SRC) $(COMMON_HDR)
	$(COMPILE) -o $@ server.c $(STEP_SRC) $(COMMON_SRC) $(LDLIBS)

clean:
	rm -f server server-sanitize

.PHONY: clean
