# SPDX-License-Identifier: MIT
# What the programs' command lines share (cli/opt.h): each program and
# benchmark lists $(CLI_SOURCES) and compiles with $(CLI_CPPFLAGS).
CLI_SOURCES = cli/opt.c cli/opt.h
CLI_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/cli
